//! The ID 77 contracts, one module per service (`id77.<service>.v1`): the messages always, the gRPC clients and
//! servers with the `grpc` feature (a partner's referral consumer needs the event types only, without tonic); the
//! event catalogue ([`events`]); and the descriptor set that every service hands to gRPC reflection.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

macro_rules! contract {
    ($service:ident, $package:literal) => {
        pub mod $service {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
                #[cfg(feature = "grpc")]
                include!(concat!(env!("OUT_DIR"), "/grpc/", $package, ".rs"));
            }
        }
    };
}

contract!(membership, "id77.membership.v1");
contract!(catalogue, "id77.catalogue.v1");
contract!(requests, "id77.requests.v1");
contract!(routing, "id77.routing.v1");
contract!(billing, "id77.billing.v1");

pub mod events;
pub mod vocabulary;

/// Response metadata of `SubmitRequest` (value `true`) when the answer replays a request an earlier call with the
/// same idempotency key filed, rather than one this call filed. A metadata entry rather than a field of `Request`:
/// it describes the call, not the request.
pub const IDEMPOTENCY_REPLAYED_METADATA: &str = "id77-idempotency-replayed";

/// Encoded `FileDescriptorSet` of every contract, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/id77_descriptor.bin"));

pub use prost;
pub use prost_types;
