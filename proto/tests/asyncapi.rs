//! The event contract for integrators (`docs/asyncapi.yaml`) stays in sync with the protobuf events: every
//! message of `proto/id77/*/v1/events.proto` is a component message of the document (summary naming its
//! protobuf type), every message a channel refers to is defined and exists in the protos, and every subject
//! the protos name in their comments is a channel address.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// (package, message) of every events.proto message, and the subjects named in the comments above them.
fn proto_events() -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut messages = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    let dir = root().join("proto/id77");
    let services = std::fs::read_dir(&dir).expect("proto/id77 is readable");
    for service in services.flatten() {
        let file = service.path().join("v1/events.proto");
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("package ").map(|p| p.trim_end_matches(';').to_owned()))
            .expect("a package line");
        let mut comments: Vec<&str> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix("//") {
                comments.push(comment);
            } else if let Some(rest) = line.strip_prefix("message ") {
                let name = rest.split_whitespace().next().unwrap_or_default().to_owned();
                for comment in comments.drain(..) {
                    for token in comment.split(|c: char| c.is_whitespace() || c == '`' || c == ',') {
                        let token = token.trim_end_matches(['.', ':', ';', ')']);
                        if token.starts_with("id77.") && !token.contains(".v1.") && token.split('.').count() >= 4 {
                            subjects.insert(token.replace("<provider_code>", "{provider_code}"));
                        }
                    }
                }
                messages.insert((package.clone(), name));
            } else {
                comments.clear();
            }
        }
    }
    (messages, subjects)
}

/// The document's component messages (name → summary), channel addresses and referenced messages.
fn document() -> (Vec<(String, String)>, BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(root().join("docs/asyncapi.yaml")).expect("docs/asyncapi.yaml");
    let mut components = Vec::new();
    let mut addresses = BTreeSet::new();
    let mut refs = BTreeSet::new();
    let mut in_messages = false;
    for line in text.lines() {
        if let Some(address) = line.trim().strip_prefix("address: ") {
            addresses.insert(address.trim().to_owned());
        }
        let mut rest = line;
        while let Some(at) = rest.find("#/components/messages/") {
            let tail = &rest[at + "#/components/messages/".len()..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            refs.insert(name);
            rest = tail;
        }
        if line.starts_with("  messages:") {
            in_messages = true;
            continue;
        }
        if in_messages {
            if !line.starts_with("    ") {
                in_messages = false;
                continue;
            }
            if let Some((name, body)) = line.trim().split_once(':') {
                let summary = body
                    .split("summary:")
                    .nth(1)
                    .map(|s| s.trim().trim_end_matches('}').trim().trim_matches('\'').to_owned())
                    .unwrap_or_default();
                components.push((name.trim().to_owned(), summary));
            }
        }
    }
    (components, addresses, refs)
}

#[test]
fn every_event_message_is_documented_and_every_documented_message_exists() {
    let (messages, subjects) = proto_events();
    let (components, addresses, refs) = document();
    assert!(messages.len() >= 10, "events found: {messages:?}");
    let documented: BTreeSet<String> = components.iter().map(|(_, summary)| summary.clone()).collect();
    let mut missing = Vec::new();
    for (package, name) in &messages {
        if !documented.contains(&format!("proto {package}.{name}")) {
            missing.push(format!("{package}.{name}"));
        }
    }
    assert!(missing.is_empty(), "events.proto messages missing from docs/asyncapi.yaml: {missing:?}");

    let known: BTreeSet<String> = messages.iter().map(|(p, n)| format!("proto {p}.{n}")).collect();
    for (name, summary) in &components {
        assert!(known.contains(summary), "component {name} names {summary:?}, which no events.proto defines");
        assert!(summary.ends_with(&format!(".{name}")), "component {name} is described as {summary:?}");
    }
    let names: BTreeSet<String> = components.iter().map(|(n, _)| n.clone()).collect();
    for r in &refs {
        assert!(names.contains(r), "a channel refers to #/components/messages/{r}, which is not defined");
    }
    for name in &names {
        assert!(refs.contains(name), "component message {name} is on no channel");
    }
    for subject in &subjects {
        assert!(addresses.contains(subject), "subject {subject} (named in events.proto) has no channel");
    }
}

/// The event catalogue (`id77_proto::events`) and the document agree: every event of the catalogue has its subject
/// as a channel address and its message documented, and the catalogue names every events.proto message that has
/// a fixed subject (the provider's own messages, `ReferralReply` and `ReferralProgress`, travel on
/// `id77.referrals.<provider_code>.reply` only).
#[test]
fn the_event_catalogue_is_the_documented_one() {
    let (messages, _) = proto_events();
    let (components, addresses, _) = document();
    let documented: BTreeSet<String> = components.iter().map(|(_, summary)| summary.clone()).collect();
    let catalogue = id77_proto::events::all();
    for event in &catalogue {
        assert!(addresses.contains(event.subject), "{} ({}) has no channel", event.subject, event.type_name);
        assert!(documented.contains(&format!("proto {}", event.type_name)), "{} is not documented", event.type_name);
    }
    let in_catalogue: BTreeSet<String> = catalogue.iter().map(|e| e.type_name.clone()).collect();
    let provider_only = ["id77.routing.v1.ReferralReply", "id77.routing.v1.ReferralProgress"];
    for (package, name) in &messages {
        let full = format!("{package}.{name}");
        if !provider_only.contains(&full.as_str()) {
            assert!(in_catalogue.contains(&full), "{full} is in events.proto but not in the event catalogue");
        }
    }
    let reply = id77_proto::events::provider::reply("{provider_code}");
    let offered = id77_proto::events::provider::offered("{provider_code}");
    assert!(addresses.contains(&reply) && addresses.contains(&offered), "{reply} / {offered}");
}
