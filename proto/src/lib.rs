//! The ID 77 contracts, one module per service (`id77.<service>.v1`), plus the descriptor set that
//! every service hands to gRPC reflection.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod membership {
    pub mod v1 {
        tonic::include_proto!("id77.membership.v1");
    }
}
pub mod catalogue {
    pub mod v1 {
        tonic::include_proto!("id77.catalogue.v1");
    }
}
pub mod requests {
    pub mod v1 {
        tonic::include_proto!("id77.requests.v1");
    }
}
pub mod routing {
    pub mod v1 {
        tonic::include_proto!("id77.routing.v1");
    }
}
pub mod billing {
    pub mod v1 {
        tonic::include_proto!("id77.billing.v1");
    }
}

/// Encoded `FileDescriptorSet` of every contract, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("id77_descriptor");

pub use prost;
pub use prost_types;
