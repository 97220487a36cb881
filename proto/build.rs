//! Compiles every contract under `id77/` with a vendored `protoc`, so a fresh machine needs nothing installed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "id77/membership/v1/membership.proto",
    "id77/membership/v1/events.proto",
    "id77/membership/v1/identity.proto",
    "id77/catalogue/v1/catalogue.proto",
    "id77/catalogue/v1/events.proto",
    "id77/requests/v1/requests.proto",
    "id77/requests/v1/events.proto",
    "id77/requests/v1/conversation.proto",
    "id77/routing/v1/routing.proto",
    "id77/routing/v1/events.proto",
    "id77/billing/v1/billing.proto",
    "id77/billing/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Type names let the outbox stamp each event with its protobuf type (`Id77-Event-Type`).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure().file_descriptor_set_path(out.join("id77_descriptor.bin")).compile_with_config(
        config,
        PROTOS,
        &["."],
    )?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
