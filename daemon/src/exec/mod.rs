//! Running a command inside a running container. The daemon never joins a container's
//! namespaces itself (a multi-threaded process can't); it starts `sysc-exec`, a small
//! single-threaded helper, per command. The helper places itself in the container's
//! cgroups and PID namespace and clones the command into a cgroup leaf of its own, so
//! that "kill everything this command started" is one write to cgroup.kill.

mod child;
pub mod helper;
pub mod messages;
mod path_search;
pub mod spec;

pub use spec::{ExecSpec, WindowSize};
