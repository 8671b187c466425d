//! sysc-exec: started by syscd, one per command run in a container; see syscd::exec.

fn main() {
    std::process::exit(syscd::exec::helper::main());
}
