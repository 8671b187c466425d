//! Builds the escape tests' probe (probe/sysc-probe.rs) with plain rustc, statically
//! linked so it runs in containers without a C library; the tests find it through
//! env!("SYSC_PROBE").

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=probe/sysc-probe.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("sysc-probe");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut command = Command::new(rustc);
    command
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "opt-level=1",
            "--edition",
            "2021",
        ])
        .arg("-o")
        .arg(&out)
        .arg(manifest.join("probe/sysc-probe.rs"));
    if let Ok(target) = std::env::var("TARGET") {
        command.args(["--target", &target]);
    }
    let output = command.output().expect("run rustc for the probe");
    assert!(
        output.status.success(),
        "building sysc-probe failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("cargo:rustc-env=SYSC_PROBE={}", out.display());
}
