//! The sysc gRPC API: generated from `sysc.proto`, which documents every call.

#![allow(clippy::large_enum_variant)]

pub mod token;

pub mod v1 {
    tonic::include_proto!("sysc.v1");
}

/// The encoded file descriptor set of `sysc.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sysc_descriptor");

pub use prost_types::Timestamp;
