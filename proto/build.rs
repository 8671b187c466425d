use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so a fresh machine builds without an apt step.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // File data as `Bytes`: decoded without a copy out of the receive buffer.
        .bytes(".sysc.v1.PushFileRequest.data")
        .bytes(".sysc.v1.PullFileResponse.data")
        .file_descriptor_set_path(out.join("sysc_descriptor.bin"))
        .compile_protos(&["sysc.proto"], &["."])?;
    println!("cargo:rerun-if-changed=sysc.proto");
    Ok(())
}
