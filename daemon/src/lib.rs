//! syscd: the sysc daemon, as a library. The runtime, cgroup and monitor modules are
//! usable without gRPC (the monitor binary uses nothing else).

pub mod api;
pub mod archive;
pub mod cgroup;
pub mod containers;
pub mod db;
pub mod descriptors;
pub mod error;
pub mod events;
pub mod exec;
pub mod files;
pub mod fsutil;
pub mod images;
pub mod keys;
pub mod locks;
pub mod monitor;
pub mod names;
pub mod network;
pub mod pidfd;
pub mod progress;
pub mod proxy;
pub mod rootfs_files;
pub mod runtime;
pub mod schedule;
pub mod security;
pub mod server;
pub mod settings;
pub mod storage;
pub mod time;
pub mod trust;
