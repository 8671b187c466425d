//! Which device nodes a container may use: the v1 devices controller's rules on a
//! hybrid host, the same rules as an eBPF program attached to the container's cgroup2
//! directory on a v2 one.
//!
//! The standard nodes only (null, zero, full, random, urandom, tty, console, ptmx and
//! the container's ptys), as LXC allows; any node may be created (package scripts do),
//! no other opened. In a user namespace mknod is refused anyway; this is what keeps a
//! privileged container from the host's disks and memory.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::files::write;
use super::{CgroupError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Char,
    Block,
}

/// One allowed access; None stands for any major or minor number.
struct Rule {
    kind: Kind,
    major: Option<u32>,
    minor: Option<u32>,
    /// "m" (mknod), "r", "w", as the v1 controller writes them.
    access: &'static str,
}

const fn char_dev(major: u32, minor: Option<u32>) -> Rule {
    Rule {
        kind: Kind::Char,
        major: Some(major),
        minor,
        access: "rwm",
    }
}

const ALLOWED: [Rule; 11] = [
    Rule {
        kind: Kind::Char,
        major: None,
        minor: None,
        access: "m",
    },
    Rule {
        kind: Kind::Block,
        major: None,
        minor: None,
        access: "m",
    },
    char_dev(1, Some(3)),
    char_dev(1, Some(5)),
    char_dev(1, Some(7)),
    char_dev(1, Some(8)),
    char_dev(1, Some(9)),
    char_dev(5, Some(0)),
    char_dev(5, Some(1)),
    char_dev(5, Some(2)),
    char_dev(136, None),
];

impl Rule {
    /// As devices.allow takes it: "c 1:3 rwm".
    fn v1_line(&self) -> String {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let kind = if self.kind == Kind::Char { 'c' } else { 'b' };
        format!("{kind} {}:{} {}", number(self.major), number(self.minor), self.access)
    }

    /// The bpf_cgroup_dev_ctx access bits (BPF_DEVCG_ACC_*) of this rule.
    fn access_bits(&self) -> u32 {
        self.access.chars().fold(0, |bits, c| {
            bits | match c {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => 0,
            }
        })
    }

    /// This rule's block of the program: falls through to the next block unless the
    /// device matches and every access asked for is allowed, then returns 1.
    /// r2 = device type, r3 = access asked for, r4 = major, r5 = minor.
    fn program_block(&self) -> String {
        let kind = if self.kind == Kind::Char { 2 } else { 1 };
        let mut tests = vec![format!("jne r2, {kind}")];
        if let Some(major) = self.major {
            tests.push(format!("jne r4, {major}"));
        }
        if let Some(minor) = self.minor {
            tests.push(format!("jne r5, {minor}"));
        }
        let len = tests.len() + 5;
        let mut block: Vec<String> = tests
            .into_iter()
            .enumerate()
            .map(|(i, test)| format!("{test}, +{}", len - 1 - i))
            .collect();
        block.push("mov32 r0, r3".into());
        block.push(format!("and32 r0, {}", !self.access_bits() & 7));
        block.push("jne r0, 0, +2".into());
        block.push("mov32 r0, 1".into());
        block.push("exit".into());
        block.join("\n")
    }
}

/// Denies every device but those above in a v1 devices cgroup `dir` (new, empty).
pub fn restrict_v1(dir: &Path) -> Result<()> {
    write(&dir.join("devices.deny"), "a")?;
    for rule in &ALLOWED {
        write(&dir.join("devices.allow"), &rule.v1_line())?;
    }
    Ok(())
}

/// The eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) for the rules: 1 allows, 0 denies.
fn program() -> Vec<u8> {
    let mut source = vec![
        "ldxw r2, [r1]".to_string(),
        "mov32 r3, r2".into(),
        "and32 r2, 0xffff".into(),
        "rsh32 r3, 16".into(),
        "ldxw r4, [r1+4]".into(),
        "ldxw r5, [r1+8]".into(),
    ];
    source.extend(ALLOWED.iter().map(Rule::program_block));
    source.push("mov32 r0, 0".into());
    source.push("exit".into());
    rbpf::assembler::assemble(&source.join("\n")).expect("the device program assembles")
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs systemd inside attaches below ours run too, and all must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of union bpf_attr that BPF_PROG_LOAD reads.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The leading fields of union bpf_attr that BPF_PROG_ATTACH reads.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// Attaches the device program to the cgroup2 directory `dir`. It stays attached for
/// as long as the cgroup exists.
pub fn attach_v2(dir: &Path) -> Result<()> {
    let failed = |what: &str, source: std::io::Error| CgroupError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(source.kind(), format!("{what}: {source}")),
    };
    let code = program();
    let license = c"Apache-2.0";
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: bpf(2) reads `load` and the buffers it points to, which outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &load, std::mem::size_of::<ProgLoad>()) };
    if fd < 0 {
        return Err(failed("load the device program", std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let program = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cgroup = fs::File::open(dir).map_err(|e| failed("open", e))?;
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: bpf(2) reads `attach`; both descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if rc < 0 {
        return Err(failed("attach the device program", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_rules_read_as_lxc_writes_them() {
        let lines: Vec<String> = ALLOWED.iter().map(Rule::v1_line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert_eq!(lines[10], "c 136:* rwm");
    }

    /// Runs the program in rbpf's interpreter on a bpf_cgroup_dev_ctx.
    fn allows(kind: u32, access: u32, major: u32, minor: u32) -> bool {
        let code = program();
        let vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
        let mut ctx = Vec::new();
        for word in [access << 16 | kind, major, minor] {
            ctx.extend_from_slice(&word.to_ne_bytes());
        }
        vm.execute_program(&mut ctx).unwrap() == 1
    }

    #[test]
    fn the_program_allows_the_standard_nodes_only() {
        let (block, char_dev, mknod, read, write) = (1, 2, 1, 2, 4);
        assert!(allows(char_dev, read | write, 1, 3), "/dev/null");
        assert!(allows(char_dev, read, 136, 7), "a pty");
        assert!(allows(block, mknod, 7, 0), "creating a node");
        assert!(!allows(block, read, 7, 0), "reading a loop device");
        assert!(!allows(block, mknod | read, 7, 0), "creating and reading at once");
        assert!(!allows(char_dev, read, 1, 1), "/dev/mem");
        assert!(!allows(char_dev, write, 10, 200), "/dev/net/tun");
    }
}
