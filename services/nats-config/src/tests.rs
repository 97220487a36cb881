//! Unit tests of the configuration generator.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use id77_platform::Namespace;
use id77_proto::events::is_valid_subject_token;
use nkeys::KeyPair;

use super::*;
use crate::generate::quote;

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("id77-nats-config-unit-{}-{}", std::process::id(), uuid_like()))
}

fn uuid_like() -> String {
    KeyPair::new_user().public_key()[1..13].to_ascii_lowercase()
}

fn options(providers: &[&str], prefix: &str) -> anyhow::Result<Options> {
    Options::new(
        SocketAddr::from(([127, 0, 0, 1], 4223)),
        Path::new("/var/lib/id77/js"),
        prefix,
        providers.iter().map(|p| (*p).to_owned()),
    )
}

#[test]
fn providers_get_exactly_their_own_subjects() {
    let permissions = provider_permissions(&Namespace::default(), "caue77");
    assert_eq!(
        permissions.publish,
        [
            "id77.referrals.caue77.reply",
            "$JS.API.CONSUMER.INFO.REFERRALS.provider-caue77",
            "$JS.API.CONSUMER.MSG.NEXT.REFERRALS.provider-caue77",
            "$JS.ACK.REFERRALS.provider-caue77.>",
        ]
    );
    assert_eq!(permissions.subscribe, ["_INBOX_provider_caue77.>"]);

    let prefixed = provider_permissions(&Namespace::new("t1"), "caue77");
    assert_eq!(
        prefixed.publish,
        [
            "t1.id77.referrals.caue77.reply",
            "$JS.API.CONSUMER.INFO.T1_REFERRALS.provider-caue77",
            "$JS.API.CONSUMER.MSG.NEXT.T1_REFERRALS.provider-caue77",
            "$JS.ACK.T1_REFERRALS.provider-caue77.>",
        ]
    );
    assert_eq!(prefixed.subscribe, ["_INBOX_provider_caue77.>"]);
}

#[test]
fn no_provider_subject_reaches_beyond_its_own() {
    for ns in [Namespace::default(), Namespace::new("t1")] {
        let permissions = provider_permissions(&ns, "dir-eau");
        for subject in permissions.publish.iter().chain(&permissions.subscribe) {
            assert!(!subject.contains('*'), "{subject}");
            assert!(!subject.starts_with("$JS.>") && !subject.starts_with("$JS.API.>"), "{subject}");
            assert!(subject != ">" && !subject.starts_with("_INBOX."), "{subject}");
            if let Some(stem) = subject.strip_suffix(".>") {
                assert!(
                    stem.ends_with("provider-dir-eau") || stem == "_INBOX_provider_dir-eau",
                    "only its own acks and inbox end in a wildcard: {subject}"
                );
            } else {
                assert!(subject.contains("dir-eau"), "{subject}");
            }
        }
    }
}

#[test]
fn services_publish_only_their_own_subjects() {
    let requests = service_permissions(&Namespace::default(), "requests");
    assert_eq!(
        requests.publish,
        [
            "id77.requests.>",
            "id77.deadletter.requests-members",
            "id77.deadletter.requests-offers",
            "id77.deadletter.requests-referrals",
            "id77.deadletter.requests-users",
            "id77.deadletter.requests-quotes",
            "id77.deadletter.requests-invoices",
            "id77.deadletter.requests-sessions",
            "id77.deadletter.requests-registrations",
            "$JS.API.>",
            "$JS.ACK.>",
            "_INBOX.>"
        ]
    );
    assert_eq!(requests.subscribe, ["id77.>", "_INBOX.>"]);
    let routing = service_permissions(&Namespace::new("t1"), "routing");
    assert_eq!(
        &routing.publish[..3],
        ["t1.id77.routing.>", "t1.id77.referrals.*.offered", "t1.id77.deadletter.routing-offers"]
    );
    assert_eq!(routing.subscribe, ["id77.>", "t1.id77.>", "_INBOX.>"]);
    let membership = service_permissions(&Namespace::default(), "membership");
    assert_eq!(membership.publish, ["id77.membership.>", "$JS.API.>", "$JS.ACK.>", "_INBOX.>"]);
    assert_eq!(service_permissions(&Namespace::default(), "nobody").publish, ["$JS.API.>", "$JS.ACK.>", "_INBOX.>"]);

    // No service may publish another's events, a provider's reply, or on the whole tree.
    for ns in [Namespace::default(), Namespace::new("t1")] {
        for service in SERVICES {
            let publish = service_permissions(&ns, service).publish;
            assert!(!publish.iter().any(|s| s.ends_with("id77.>") || s == ">"), "{service}: {publish:?}");
            assert!(!publish.iter().any(|s| s.contains(".reply")), "{service}: {publish:?}");
            for other in SERVICES.iter().filter(|o| **o != service) {
                let theirs = ns.subject(&format!("id77.{other}."));
                assert!(!publish.iter().any(|s| s.starts_with(&theirs)), "{service} may publish {other}'s events");
                assert!(!publish.iter().any(|s| s.contains(&format!("deadletter.{other}-"))), "{service}");
            }
        }
    }
    assert!(SERVICES.iter().all(|s| service_events(s).is_some()));
}

/// Each service's sources start exactly the durables the event catalogue gives it (`durables::<SERVICE>_<NAME>`,
/// the constant named after the durable): a consumer that is not in the catalogue (whose dead letters the server
/// would refuse), or a catalogue entry that no consumer reads, is caught here.
#[test]
fn every_durable_of_the_sources_is_in_the_catalogue() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for service in SERVICES {
        let mut found = BTreeSet::new();
        let mut stack = vec![root.join(service).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = fs::read_to_string(&path)?;
                    for (_, rest) in text.match_indices("durables::").map(|(at, _)| text.split_at(at + 10)) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                            .collect();
                        if !name.is_empty() && name != "ALL" {
                            found.insert(name);
                        }
                    }
                }
            }
        }
        let listed: BTreeSet<String> = service_events(service)
            .map(|e| e.durables.iter().map(|d| d.to_uppercase().replace('-', "_")).collect())
            .unwrap_or_default();
        assert_eq!(found, listed, "durables of {service} (services/{service}/src)");
    }
    Ok(())
}

#[test]
fn the_gateway_may_only_read_its_live_subjects() {
    let prefixed = gateway_permissions(&Namespace::new("t1"));
    assert_eq!(prefixed.publish[..2], [GATEWAY_PUBLISH_NOTHING, "$JS.API.STREAM.INFO.T1_DEADLETTER"]);
    assert!(prefixed.publish.contains(&"$JS.API.CONSUMER.INFO.T1_REQUESTS.routing-requests".to_owned()));
    assert_eq!(prefixed.publish.len(), 2 + id77_proto::events::durables::ALL.len());
    // Read-only info requests on exact subjects: no message, no change, no wildcard.
    assert!(
        prefixed.publish[1..]
            .iter()
            .all(|s| s.starts_with("$JS.API.STREAM.INFO.") || s.starts_with("$JS.API.CONSUMER.INFO."))
    );
    assert!(prefixed.publish.iter().all(|s| !s.contains('>') && !s.contains('*')));
    assert_eq!(
        prefixed.subscribe,
        [
            "t1.id77.requests.request.status_changed",
            "t1.id77.requests.message.posted",
            "t1.id77.routing.referral.offered",
            "t1.id77.membership.access.revoked",
            "_INBOX_gateway.>"
        ]
    );
    assert!(prefixed.subscribe[..4].iter().all(|s| !s.contains('>') && !s.contains('*')));
}

#[test]
fn the_configuration_lists_every_user_with_allow_lists_only() -> anyhow::Result<()> {
    let dir = temp_dir();
    let generated = generate(&dir, &options(&["dir-eau", "caue77", "caue77"], "")?)?;
    let names: Vec<_> = generated.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        ["membership", "catalogue", "requests", "routing", "billing", "gateway", "provider-caue77", "provider-dir-eau"]
    );
    assert_eq!(generated.created.len(), 8);
    let conf = fs::read_to_string(dir.join(SERVER_CONF))?;
    assert!(conf.contains("listen: \"127.0.0.1:4223\"\n"), "{conf}");
    assert!(conf.contains("jetstream {\n  store_dir: \"/var/lib/id77/js\"\n}"), "{conf}");
    let settings: Vec<&str> = conf.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    assert!(!settings.iter().any(|l| l.contains("deny")), "{conf}");
    assert!(!conf.contains("no_auth_user") && !conf.contains("password"), "{conf}");
    assert!(!conf.contains("\"$JS.>\""), "{conf}");
    assert_eq!(conf.matches("nkey: \"U").count(), 8);
    for user in &generated.users {
        assert!(conf.contains(&format!("nkey: \"{}\"", user.public_key)), "{}", user.name);
        let seed = fs::read_to_string(dir.join(user.seed_file()))?;
        assert!(seed.starts_with("SU") && seed.ends_with('\n'));
        assert!(!conf.contains(seed.trim()), "no seed in the configuration");
    }
    let caue = generated.users.iter().find(|u| u.name == "provider-caue77").map(|u| u.public_key.clone());
    let caue = caue.unwrap_or_default();
    let block = conf.split(&caue).nth(1).unwrap_or_default().split("    }\n").next().unwrap_or_default();
    assert!(block.contains(
        "publish: { allow: [\"id77.referrals.caue77.reply\", \"$JS.API.CONSUMER.INFO.REFERRALS.provider-caue77\", \
         \"$JS.API.CONSUMER.MSG.NEXT.REFERRALS.provider-caue77\", \"$JS.ACK.REFERRALS.provider-caue77.>\"] }"
    ));
    assert!(block.contains("subscribe: { allow: [\"_INBOX_provider_caue77.>\"] }"), "{block}");

    let users: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join(USERS_JSON))?)?;
    assert_eq!(users["users"]["provider-caue77"]["public_key"].as_str(), Some(caue.as_str()));
    assert_eq!(users["users"]["provider-caue77"]["seed_file"].as_str(), Some("provider-caue77.nk"));
    assert_eq!(users["users"]["routing"]["kind"].as_str(), Some("service"));
    assert_eq!(users["users"]["gateway"]["kind"].as_str(), Some("gateway"));
    let gateway = generated.users.iter().find(|u| u.name == "gateway").map(|u| u.public_key.clone());
    let gateway = gateway.unwrap_or_default();
    let block = conf.split(&gateway).nth(1).unwrap_or_default().split("    }\n").next().unwrap_or_default();
    assert!(
        block.contains("publish: { allow: [\"_id77_gateway.none\", \"$JS.API.STREAM.INFO.DEADLETTER\", "),
        "{block}"
    );
    assert!(
        block.contains(
            "subscribe: { allow: [\"id77.requests.request.status_changed\", \"id77.requests.message.posted\", \
             \"id77.routing.referral.offered\", \"id77.membership.access.revoked\", \"_INBOX_gateway.>\"] }"
        ),
        "{block}"
    );
    assert!(!fs::read_to_string(dir.join(USERS_JSON))?.contains("\"SU"), "no seed in users.json");
    fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn rerunning_keeps_the_seeds_and_the_output() -> anyhow::Result<()> {
    let dir = temp_dir();
    let first = generate(&dir, &options(&["caue77"], "")?)?;
    let conf = fs::read(dir.join(SERVER_CONF))?;
    let json = fs::read(dir.join(USERS_JSON))?;
    let second = generate(&dir, &options(&["caue77"], "")?)?;
    assert!(second.created.is_empty());
    assert_eq!(first.users, second.users);
    assert_eq!(fs::read(dir.join(SERVER_CONF))?, conf);
    assert_eq!(fs::read(dir.join(USERS_JSON))?, json);
    // A new provider gets a new seed; the others stay.
    let third = generate(&dir, &options(&["caue77", "dir-eau"], "")?)?;
    assert_eq!(third.created, ["provider-dir-eau"]);
    assert_eq!(&third.users[..7], &first.users[..]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for user in &third.users {
            let mode = fs::metadata(dir.join(user.seed_file()))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", user.name);
        }
        assert_eq!(fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
    }
    // A damaged seed is an error, never silently replaced.
    fs::write(dir.join("routing.nk"), "garbage")?;
    assert!(generate(&dir, &options(&["caue77"], "")?).is_err());
    fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn tls_makes_the_client_listener_tls_only_unless_told() -> anyhow::Result<()> {
    let dir = temp_dir();
    let tls = Tls {
        cert_file: "/etc/nats/tls/tls.crt".into(),
        key_file: "/etc/nats/tls/tls.key".into(),
        ..Default::default()
    };
    generate(&dir, &options(&["caue77"], "")?.with_tls(tls.clone())?)?;
    let conf = fs::read_to_string(dir.join(SERVER_CONF))?;
    assert!(
        conf.contains("tls {\n  cert_file: \"/etc/nats/tls/tls.crt\"\n  key_file: \"/etc/nats/tls/tls.key\"\n}\n"),
        "{conf}"
    );
    assert!(!conf.contains("allow_non_tls") && !conf.contains("verify") && !conf.contains("handshake_first"));
    assert!(conf.contains("# The client listener is TLS only"), "{conf}");
    // The users are the same with or without TLS, and authorization.conf holds them alone.
    let auth = fs::read_to_string(dir.join(AUTHORIZATION_CONF))?;
    assert!(auth.contains("authorization {") && !auth.contains("listen") && !auth.contains("tls"), "{auth}");
    assert_eq!(auth.matches("nkey: \"U").count(), 7);
    let block = conf.split("authorization {").nth(1).unwrap_or_default();
    assert_eq!(auth.split("authorization {").nth(1), Some(block));

    let every =
        Tls { ca_file: Some("/etc/nats/tls/ca.crt".into()), verify: true, handshake_first: true, ..tls.clone() };
    let text = render_tls(&every.validated()?)?;
    assert!(
        text.ends_with("  ca_file: \"/etc/nats/tls/ca.crt\"\n  verify: true\n  handshake_first: true\n}\n\n"),
        "{text}"
    );
    let mixed = render_tls(&Tls { allow_non_tls: true, ..tls.clone() }.validated()?)?;
    assert!(mixed.contains("}\nallow_non_tls: true\n"), "{mixed}");
    // Refused: verify without a CA, handshake first with clear text allowed, no certificate.
    assert!(Tls { verify: true, ..tls.clone() }.validated().is_err());
    assert!(Tls { handshake_first: true, allow_non_tls: true, ..tls.clone() }.validated().is_err());
    assert!(Tls::default().validated().is_err());
    // Relative paths are made absolute (nats-server would read them from its working directory).
    let relative = Tls { cert_file: "c.pem".into(), key_file: "k.pem".into(), ..Default::default() };
    assert!(relative.validated()?.cert_file.is_absolute());
    fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn bad_inputs_are_refused() -> anyhow::Result<()> {
    for bad in ["", "CAUE", "a.b", "*", ">", "a b", "../x"] {
        assert!(options(&[bad], "").is_err(), "{bad:?}");
    }
    for bad in ["a b", "a..b", "a.*", ">"] {
        assert!(options(&["caue77"], bad).is_err(), "{bad:?}");
    }
    assert!(quote("a\nb").is_err());
    assert_eq!(quote("/a \"b\"\\c")?, "\"/a \\\"b\\\"\\\\c\"");
    Ok(())
}

#[tokio::test]
async fn providers_come_from_every_source_given_and_the_seed_only_by_default() -> anyhow::Result<()> {
    let dir = temp_dir();
    fs::create_dir_all(&dir)?;
    let seed = dir.join("catalogue.json");
    fs::write(&seed, r#"{"providers": [{"code": "from-seed"}]}"#)?;
    let missing = dir.join("no-such-seed.json");

    // Given codes (flags, or ID77_PROVIDERS split on commas): no file is read, even when present.
    let given = ProviderSources { codes: vec!["b".into(), " a ".into(), "".into(), "b".into()], ..Default::default() };
    let resolved = given.resolve(&seed).await?;
    assert_eq!(resolved.codes, ["a", "b"]);
    assert_eq!(resolved.sources, ["2 given"]);
    // A file given adds its codes.
    let both = ProviderSources { catalogue_file: Some(seed.clone()), ..given.clone() };
    assert_eq!(both.resolve(&missing).await?.codes, ["a", "b", "from-seed"]);
    // Nothing given: the development seed when there is one (a source checkout), else no provider (the image).
    let none = ProviderSources::default();
    let resolved = none.resolve(&seed).await?;
    assert_eq!(resolved.codes, ["from-seed"]);
    assert!(resolved.sources[0].ends_with("(development default: no source given)"), "{:?}", resolved.sources);
    assert_eq!(none.resolve(&missing).await?, ResolvedProviders::default());
    // Bad codes are refused, whatever their source.
    let bad = ProviderSources { codes: vec!["Bad.Code".into()], ..Default::default() };
    assert!(bad.resolve(&missing).await.is_err());
    // An unreachable database is an error, not an empty list.
    let down = ProviderSources {
        catalogue_database_url: Some("postgres://nobody@127.0.0.1:1/id77_catalogue".into()),
        ..Default::default()
    };
    let error = down.resolve(&missing).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(error.starts_with("connecting to the catalogue's database id77_catalogue at 127.0.0.1:1"), "{error}");
    fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn the_demo_catalogue_lists_the_providers() -> anyhow::Result<()> {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(DEV_CATALOGUE_SEED);
    let providers = providers_from_catalogue(&seed)?;
    assert!(providers.contains(&"caue77".to_owned()), "{providers:?}");
    assert!(providers.iter().all(|p| is_valid_subject_token(p)));

    let dir = temp_dir();
    fs::create_dir_all(&dir)?;
    let file = dir.join("catalogue.json");
    fs::write(&file, r#"{"providers": [{"code": "b", "name": "B"}, {"code": "a"}], "offers": []}"#)?;
    assert_eq!(providers_from_catalogue(&file)?, ["a", "b"]);
    fs::write(&file, r#"{"providers": [{"code": "B.x"}]}"#)?;
    assert!(providers_from_catalogue(&file).is_err());
    fs::write(&file, r#"{"offers": []}"#)?;
    assert!(providers_from_catalogue(&file).is_err());
    fs::remove_dir_all(&dir)?;
    Ok(())
}
