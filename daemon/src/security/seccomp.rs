//! The seccomp filter every process of a container runs under: the init (inherited by
//! all it starts) and each command exec'd into it. Built with libseccomp, as LXC does,
//! so system calls are resolved by name for each ABI the filter covers.
//!
//! On x86_64 the 32-bit (i386) ABI gets the same rules, resolved to its own numbers;
//! the x32 ABI, which this filter does not cover, fails with ENOSYS.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use super::policy::SecurityPolicy;
use super::{Result, SecurityError, split_list};

/// Host-level calls no container makes legitimately, in the spirit of LXC's default
/// profile: kernel images and modules, file handles that bypass the mount namespace,
/// swap, process accounting, raw I/O ports and long-gone calls.
pub const DEFAULT_DENY: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "acct",
    "nfsservctl",
    "uselib",
    "lookup_dcookie",
    "vm86",
    "vm86old",
];

const CLONE_NEWUSER: u64 = libc::CLONE_NEWUSER as u64;
const MNT_FORCE: u64 = libc::MNT_FORCE as u64;

/// Checks a list key's system call names.
pub fn check_names(value: &str) -> std::result::Result<(), String> {
    for name in split_list(value) {
        ScmpSyscall::from_name(&name.to_ascii_lowercase())
            .map_err(|_| format!("{name:?} is not a system call libseccomp knows"))?;
    }
    Ok(())
}

/// Builds the filter for `policy` and loads it into the calling thread. Must run
/// before the process gives up root in the container: loading needs CAP_SYS_ADMIN in
/// its user namespace, since no_new_privs stays off (setuid programs inside work).
pub fn load(policy: &SecurityPolicy) -> Result<()> {
    build(policy)?.load().map_err(failed("load the filter"))
}

fn build(policy: &SecurityPolicy) -> Result<ScmpFilterContext> {
    let mut filter = ScmpFilterContext::new(ScmpAction::Allow).map_err(failed("create a filter"))?;
    filter.set_ctl_nnp(false).map_err(failed("leave no_new_privs off"))?;
    filter
        .set_act_badarch(ScmpAction::Errno(libc::ENOSYS))
        .map_err(failed("set the action for other ABIs"))?;
    if ScmpArch::native() == ScmpArch::X8664 {
        filter.add_arch(ScmpArch::X86).map_err(failed("add the i386 ABI"))?;
    }
    for name in &policy.denied_syscalls {
        let syscall = resolve(name)?;
        filter
            .add_rule(ScmpAction::Errno(libc::EPERM), syscall)
            .map_err(failed(&format!("deny {name}")))?;
    }
    // As LXC's reject_force_umount: a forced unmount can reach past the container.
    filter
        .add_rule_conditional(
            ScmpAction::Errno(libc::EACCES),
            resolve("umount2")?,
            &[ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(MNT_FORCE), MNT_FORCE)],
        )
        .map_err(failed("deny forced unmounts"))?;
    if !policy.nesting {
        deny_user_namespaces(&mut filter)?;
    }
    Ok(filter)
}

/// Without nesting no process may create a user namespace: the container needs none,
/// and nested user namespaces are where many kernel privilege escalations start.
/// clone3 passes its flags in memory a filter cannot read, so it fails with ENOSYS
/// and the C library falls back to clone, whose flags it can.
fn deny_user_namespaces(filter: &mut ScmpFilterContext) -> Result<()> {
    let newuser = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(CLONE_NEWUSER), CLONE_NEWUSER);
    for name in ["unshare", "clone"] {
        filter
            .add_rule_conditional(ScmpAction::Errno(libc::EPERM), resolve(name)?, &[newuser])
            .map_err(failed(&format!("deny user namespaces through {name}")))?;
    }
    filter
        .add_rule(ScmpAction::Errno(libc::ENOSYS), resolve("clone3")?)
        .map_err(failed("deny clone3"))?;
    Ok(())
}

fn resolve(name: &str) -> Result<ScmpSyscall> {
    ScmpSyscall::from_name(name).map_err(|_| SecurityError::Invalid(format!("unknown system call {name}")))
}

fn failed(what: &str) -> impl Fn(libseccomp::error::SeccompError) -> SecurityError + '_ {
    move |e| SecurityError::Seccomp {
        what: what.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_names("kexec_load, mount").is_ok());
        assert_eq!(
            check_names("kexec_lod").unwrap_err(),
            "\"kexec_lod\" is not a system call libseccomp knows"
        );
    }

    #[test]
    fn the_default_policy_builds_for_every_abi() {
        let policy = SecurityPolicy::from_config(&Default::default()).unwrap();
        let out = tempfile::tempfile().unwrap();
        build(&policy).unwrap().export_bpf(&out).unwrap();
        assert!(out.metadata().unwrap().len() > 0);
    }
}
