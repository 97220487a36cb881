//! Backward compatibility of the v1 contracts. `compat/v1.lock` lists every message field (number, type,
//! label), enum value and rpc published so far; the current contracts must still contain each of them
//! unchanged. Additions are free: after adding, refresh the lock with
//! `ID77_UPDATE_PROTO_LOCK=1 cargo test -p id77-proto --test compat` and commit it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use prost::Message;
use prost_types::FileDescriptorSet;

fn surface() -> BTreeSet<String> {
    let set = FileDescriptorSet::decode(id77_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    let mut lines = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("id77.")) {
        let package = file.package();
        for message in &file.message_type {
            lines.insert(format!("message {package}.{}", message.name()));
            for field in &message.field {
                lines.insert(format!(
                    "field {package}.{}.{} = {} {:?} {:?} {}",
                    message.name(),
                    field.name(),
                    field.number(),
                    field.label(),
                    field.r#type(),
                    field.type_name()
                ));
            }
        }
        for e in &file.enum_type {
            for value in &e.value {
                lines.insert(format!("enum {package}.{}.{} = {}", e.name(), value.name(), value.number()));
            }
        }
        for service in &file.service {
            for method in &service.method {
                lines.insert(format!(
                    "rpc {package}.{}.{}({}) returns ({})",
                    service.name(),
                    method.name(),
                    method.input_type(),
                    method.output_type()
                ));
            }
        }
    }
    lines
}

#[test]
fn v1_contracts_only_grow() {
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/v1.lock");
    let current = surface();
    if std::env::var_os("ID77_UPDATE_PROTO_LOCK").is_some() {
        let text: String = current.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&lock, text).expect("write lock");
        return;
    }
    let published = std::fs::read_to_string(&lock).expect("proto/compat/v1.lock");
    let removed: Vec<&str> = published.lines().filter(|l| !l.is_empty() && !current.contains(*l)).collect();
    assert!(
        removed.is_empty(),
        "breaking change to a v1 contract (removed or changed; add a new field or a v2 instead):\n{}",
        removed.join("\n")
    );
}
