//! Who may publish and subscribe to what: each platform service, the gateway and each provider, derived from the
//! event catalogue (`id77_proto::events`): a service publishes its own stream's subjects, its hand-offs and the dead
//! letters of its durables, nothing of another service.

use id77_platform::Namespace;
use id77_proto::events::{self, Durable, Publisher, StreamDef, durables, streams::REFERRALS};
use id77_referral_consumer::{durable_name, inbox_prefix};
use serde::Serialize;

/// The platform services that get a NATS user, in the order they appear in the configuration.
pub const SERVICES: [&str; 5] = [
    Publisher::Membership.name(),
    Publisher::Catalogue.name(),
    Publisher::Requests.name(),
    Publisher::Routing.name(),
    Publisher::Billing.name(),
];

/// What one platform service publishes, from the event catalogue: the source of its publish allow-list
/// ([`service_permissions`]).
#[derive(Debug, Clone)]
pub struct ServiceEvents {
    pub service: &'static str,
    /// Its own stream: it publishes its events on the stream's subjects (`id77.<service>.>`), and no other
    /// service does.
    pub stream: StreamDef,
    /// Other subjects it publishes on (logical, before the deployment's prefix): routing's referrals to every
    /// provider (stream REFERRALS), never their replies.
    pub also: Vec<&'static str>,
    /// Its durable consumers: each dead-letters on `id77.deadletter.<durable>` (`id77_platform::consumer`).
    pub durables: Vec<&'static str>,
}

/// The catalogue entry of a service; `None` for a name that is not a platform service.
pub fn service_events(service: &str) -> Option<ServiceEvents> {
    let publisher = Publisher::from_name(service)?;
    let also = if publisher == Publisher::Routing { vec![events::provider::ALL_OFFERED] } else { Vec::new() };
    let durables = durables::ALL.iter().filter(|d: &&Durable| d.service == publisher).map(|d| d.name).collect();
    Some(ServiceEvents { service: publisher.name(), stream: publisher.stream(), also, durables })
}

/// The gateway's user: subscribe-only, to the subjects of its live updates.
pub const GATEWAY: &str = "gateway";
/// The one subject the gateway may publish on, which nothing reads (an empty allow-list would not restrict).
pub const GATEWAY_PUBLISH_NOTHING: &str = "_id77_gateway.none";

/// Subject permissions of one user: allow-lists only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// A platform service ([`service_events`]): it publishes only its own subjects under the deployment's prefix
/// (its stream's, the others of its entry, and the dead-letter subject of each of its durables), plus the
/// JetStream API, acks and inboxes (a publish's ack comes back on an `_INBOX`); it reads every service's events
/// (`id77.>`). Services are trusted with the whole JetStream API of the account (they create streams and
/// consumers); they answer no core NATS requests, so no `allow_responses`. An unknown service gets no event
/// subject at all.
pub fn service_permissions(ns: &Namespace, service: &str) -> Permissions {
    let mut publish = Vec::new();
    if let Some(own) = service_events(service) {
        publish.extend(own.stream.subjects.iter().chain(&own.also).map(|s| ns.subject(s)));
        publish.extend(own.durables.iter().map(|d| ns.subject(&events::deadletter(d))));
    }
    publish.extend(["$JS.API.>".to_owned(), "$JS.ACK.>".to_owned(), "_INBOX.>".to_owned()]);
    let mut subscribe = vec![events::EVERYTHING.to_owned()];
    if !ns.prefix().is_empty() {
        subscribe.push(ns.subject(events::EVERYTHING));
    }
    subscribe.push("_INBOX.>".to_owned());
    Permissions { publish, subscribe }
}

/// A provider: publish its replies and the three JetStream subjects of its own durable consumer (info, pull next,
/// ack), and subscribe only to its own inbox prefix, on which its pulled messages and API answers arrive. Exact
/// subjects; the only wildcards are under its own ack subject and its own inbox. No `allow_responses`: its
/// acks are already allowed by subject, and it answers no requests.
pub fn provider_permissions(ns: &Namespace, code: &str) -> Permissions {
    let stream = ns.stream(REFERRALS.name);
    let durable = durable_name(code);
    Permissions {
        publish: vec![
            ns.subject(&events::provider::reply(code)),
            format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
            format!("$JS.ACK.{stream}.{durable}.>"),
        ],
        subscribe: vec![format!("{}.>", inbox_prefix(code))],
    }
}

/// The gateway: core subscriptions to the live update subjects ([`events::LIVE`]) and to membership's access
/// revocations ([`id77_platform::revocation::SUBJECT`], refused tokens) under the deployment's prefix, exactly; and
/// for the operator's `GET /v1/operations`, read-only JetStream requests, exact subjects: the DEADLETTER stream's
/// info and each durable consumer's info, answered on its own inbox prefix
/// ([`id77_platform::nats::GATEWAY_INBOX_PREFIX`]), the only inbox it reads. No other JetStream API (it can neither
/// read a message nor change a stream or consumer); an inert subject keeps the publish list non-empty.
pub fn gateway_permissions(ns: &Namespace) -> Permissions {
    let subjects = events::LIVE.iter().copied().chain([events::families::REVOCATIONS.filter]);
    let mut publish = vec![
        GATEWAY_PUBLISH_NOTHING.to_owned(),
        format!("$JS.API.STREAM.INFO.{}", ns.stream(events::streams::DEADLETTER.name)),
    ];
    publish.extend(
        durables::ALL.iter().map(|d| format!("$JS.API.CONSUMER.INFO.{}.{}", ns.stream(d.reads.stream.name), d.name)),
    );
    let mut subscribe: Vec<String> = subjects.map(|s| ns.subject(s)).collect();
    subscribe.push(format!("{}.>", id77_platform::nats::GATEWAY_INBOX_PREFIX));
    Permissions { publish, subscribe }
}
