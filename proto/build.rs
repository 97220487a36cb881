//! Compiles every contract under `id77/` with a vendored `protoc`, so a fresh machine needs nothing installed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "id77/membership/v1/membership.proto",
    "id77/membership/v1/events.proto",
    "id77/membership/v1/identity.proto",
    "id77/catalogue/v1/catalogue.proto",
    "id77/catalogue/v1/sessions.proto",
    "id77/catalogue/v1/events.proto",
    "id77/requests/v1/requests.proto",
    "id77/requests/v1/events.proto",
    "id77/requests/v1/conversation.proto",
    "id77/routing/v1/routing.proto",
    "id77/routing/v1/events.proto",
    "id77/billing/v1/billing.proto",
    "id77/billing/v1/events.proto",
];

const PACKAGES: &[&str] = &["membership", "catalogue", "requests", "routing", "billing"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // The messages, without gRPC code: the event types a partner's consumer needs, with no tonic. Type names
    // let the outbox stamp each event with its protobuf type (`Id77-Event-Type`).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .file_descriptor_set_path(out.join("id77_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["."])?;
    // The gRPC clients and servers (feature `grpc`), in their own directory, naming the messages above.
    if std::env::var_os("CARGO_FEATURE_GRPC").is_some() {
        let grpc = out.join("grpc");
        std::fs::create_dir_all(&grpc)?;
        let mut builder = tonic_prost_build::configure().out_dir(&grpc);
        for package in PACKAGES {
            builder = builder.extern_path(format!(".id77.{package}.v1"), format!("crate::{package}::v1"));
        }
        builder.compile_with_config(tonic_prost_build::Config::new(), PROTOS, &["."])?;
    }
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
