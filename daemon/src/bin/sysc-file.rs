//! sysc-file: started by syscd, one per file request on a container; see syscd::files.

fn main() {
    std::process::exit(syscd::files::helper::main());
}
