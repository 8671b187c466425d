//! sysc-proxy: started by syscd, one per proxy device of a running container; see
//! syscd::proxy.

fn main() {
    std::process::exit(syscd::proxy::helper::main());
}
