//! sysc-probe: a tiny static program the escape tests run inside containers (busybox
//! ones have no C library), as root, to try one thing and say what the kernel answered.
//! Built by tests/build.rs with plain rustc; no crates.
//!
//!   sysc-probe sys NR [ARG...]     raw 64-bit system call (`syscall`), up to 6 arguments
//!   sysc-probe sys32 NR [ARG...]   the same through `int 0x80`, the i386 compat ABI
//!   sysc-probe read PATH           open and read up to 4 KiB
//!   sysc-probe write PATH TEXT     open O_WRONLY and write TEXT
//!
//! An argument is a decimal or 0x-hex integer (negative allowed), or `str:TEXT`: a
//! pointer to a NUL-terminated copy of TEXT, placed below 4 GiB so sys32 can use it.
//! Prints `ok RET` (`ok N` bytes for read, `ok` for write) or `errno N`, and exits 0;
//! exit 2 means the probe itself was misused.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::exit;

fn usage() -> ! {
    eprintln!("usage: sysc-probe sys|sys32 NR [ARG...] | read PATH | write PATH TEXT");
    exit(2)
}

fn report_io(result: std::io::Result<String>) {
    match result {
        Ok(text) => println!("{text}"),
        Err(e) => println!("errno {}", e.raw_os_error().unwrap_or(0)),
    }
}

fn read(path: &str) -> std::io::Result<String> {
    // O_NONBLOCK: /proc/kmsg and the like answer EAGAIN instead of hanging the test.
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(0o4000).open(path)?;
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < buf.len() {
        match file.read(&mut buf[total..])? {
            0 => break,
            n => total += n,
        }
    }
    Ok(format!("ok {total}"))
}

fn write(path: &str, text: &str) -> std::io::Result<String> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(text.as_bytes())?;
    Ok("ok".to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as i64,
        None => digits.parse::<u64>().ok()? as i64,
    };
    Some(if negative { value.wrapping_neg() } else { value })
}

#[cfg(target_arch = "x86_64")]
mod raw {
    use std::arch::asm;

    /// A 64-bit system call: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9.
    pub fn syscall64(nr: i64, a: [i64; 6]) -> i64 {
        let ret: i64;
        // SAFETY: the probe exists to make arbitrary system calls; the caller chose them.
        unsafe {
            asm!("syscall", inlateout("rax") nr => ret, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
                 in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _,
                 options(nostack));
        }
        ret
    }

    /// An i386 system call through `int 0x80`: arguments in ebx, ecx, edx, esi, edi, ebp.
    /// rbx and rbp cannot be asm operands, so they are swapped in and out through r12/r13.
    pub fn syscall32(nr: i64, a: [i64; 6]) -> i64 {
        let ret: i64;
        // SAFETY: as above; rbx and rbp are restored before the block ends.
        unsafe {
            asm!("xchg rbx, r12", "xchg rbp, r13", "int 0x80", "xchg rbx, r12", "xchg rbp, r13",
                 inlateout("rax") nr => ret, inout("r12") a[0] => _, in("rcx") a[1], in("rdx") a[2],
                 in("rsi") a[3], in("rdi") a[4], inout("r13") a[5] => _, options(nostack));
        }
        ret as i32 as i64
    }

    /// Copies `text` with a NUL into memory below 4 GiB (mmap MAP_32BIT); its address.
    pub fn low_string(text: &str) -> i64 {
        let len = text.len() + 1;
        // PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_32BIT.
        let addr = syscall64(9, [0, len as i64, 3, 0x2 | 0x20 | 0x40, -1, 0]);
        if (-4095..0).contains(&addr) {
            eprintln!("sysc-probe: mmap failed: errno {}", -addr);
            std::process::exit(2);
        }
        // SAFETY: a fresh private mapping of `len` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), addr as *mut u8, text.len());
            *(addr as *mut u8).add(text.len()) = 0;
        }
        addr
    }
}

#[cfg(target_arch = "x86_64")]
fn sys(compat: bool, args: &[String]) {
    let Some(nr) = args.first().and_then(|a| parse_int(a)) else {
        usage()
    };
    if args.len() > 7 {
        usage();
    }
    let mut values = [0i64; 6];
    for (slot, arg) in values.iter_mut().zip(&args[1..]) {
        *slot = match arg.strip_prefix("str:") {
            Some(text) => raw::low_string(text),
            None => parse_int(arg).unwrap_or_else(|| usage()),
        };
    }
    let ret = if compat {
        raw::syscall32(nr, values)
    } else {
        raw::syscall64(nr, values)
    };
    if (-4095..0).contains(&ret) {
        println!("errno {}", -ret);
    } else {
        println!("ok {ret}");
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn sys(_compat: bool, _args: &[String]) {
    eprintln!("sysc-probe: raw system calls are only implemented on x86_64");
    exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.len()) {
        (Some("sys"), 2..) => sys(false, &args[1..]),
        (Some("sys32"), 2..) => sys(true, &args[1..]),
        (Some("read"), 2) => report_io(read(&args[1])),
        (Some("write"), 3) => report_io(write(&args[1], &args[2])),
        _ => usage(),
    }
}
