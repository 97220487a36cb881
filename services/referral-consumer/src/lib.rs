//! The provider's side of a referral: what an associated organisation (a CAUE, an agency...) runs, with its own
//! NATS credentials, to receive the requests routed to it and answer them.
//!
//! It reads `id77.referrals.<provider>.offered` (stream `REFERRALS`) through its own durable pull consumer
//! `provider-<provider>`, asks a [`Decider`] for each referral, publishes the `ReferralReply` on
//! `id77.referrals.<provider>.reply` with `Nats-Msg-Id: reply-<provider>-<referral_id>-<tag>` ([`MessageIds`]),
//! waits for JetStream's ack, and only then acks the referral. A crash between the reply and the ack redelivers
//! the referral; the second reply is dropped by JetStream's duplicate window (same id), and after it by routing's
//! state machine (a decided referral stays decided).
//!
//! The `<tag>` is an HMAC of the id keyed with the provider's own secret (its NKEY seed or `.creds` file):
//! JetStream de-duplicates on the message id across the whole `REFERRALS` stream, whatever the subject, so an id
//! another provider could predict would let it publish that id first, on its own reply subject, and have this
//! provider's genuine reply dropped as a duplicate (issue 19, ADR 0007 "Reply message ids"). Nobody without the
//! secret can compute the tag, so nobody can take this provider's ids.
//!
//! NATS permissions this needs, and nothing more (exact subjects, no wildcard on `$JS.>`), with `R` the stream
//! name (`REFERRALS`) and `D` the durable (`provider-<provider>`):
//! - publish: `id77.referrals.<provider>.reply`, `$JS.API.CONSUMER.INFO.R.D`, `$JS.API.CONSUMER.MSG.NEXT.R.D`,
//!   `$JS.ACK.R.D.>`;
//! - subscribe: `_INBOX_provider_<provider>.>` only ([`inbox_prefix`]): the client always uses that inbox prefix,
//!   so a provider's credentials never need the shared `_INBOX.>`, on which it could read what other providers
//!   pull;
//! - optionally `$JS.API.CONSUMER.CREATE.R.D.id77.referrals.<provider>.offered` (or the platform creates the
//!   consumer beforehand, [`consumer_config`], and this runs with `create_consumer: false`) and, in development
//!   only, `$JS.API.STREAM.INFO.R` / `$JS.API.STREAM.CREATE.R`.
//!
//! `id77-nats-config` generates a server configuration granting exactly this (an NKEY user per provider) and
//! creates the durable consumers; the consumer then authenticates with the NKEY seed ([`Config::nkey_file`]).
//!
//! From outside the platform it connects over TLS only (ADR 0014, "Partners over TLS"): `tls://<host>:<port>`
//! and the CA that signed the server's certificate ([`Config::nats_ca_file`], `--nats-ca-file`); TLS is then
//! required, and a certificate it cannot check ends the start with an error saying so.
//!
//! It depends on NATS (`id77-bus`), the event types and catalogue (`id77-proto` without gRPC) and what forwarding
//! needs (reqwest): no database, no gRPC server, no web framework.
//!
//! Its modules, one job each: `config` (who and where), `connect` (the NATS connection), `durable` (the
//! provider's durable consumer), `incoming` (the decoded stream of referrals and notices), `consume` (a run),
//! `consumer` ([`ReferralConsumer`]), `decision` (the answer), `handler` (who answers), `reply` (what is published
//! on the reply subject), `message_ids`, `tls`, `explain` (errors an organisation can act on), `summary`, and the
//! command line's [`forward`] and print modes ([`cli`]).

pub mod cli;
mod config;
mod connect;
mod consume;
mod consumer;
mod decision;
mod durable;
mod explain;
pub mod forward;
mod handler;
mod incoming;
mod message_ids;
mod reply;
mod summary;
mod tls;

pub use config::{Config, consumer_config, durable_name, inbox_prefix};
pub use consumer::{ReferralConsumer, run};
pub use decision::{
    Decider, Decision, MAX_QUOTE_CENTS, MAX_QUOTE_NOTE_CHARS, MAX_REASON_CHARS, ON_QUOTE, Quote, Rule, RuleKind,
};
pub use explain::explain_nats_error;
pub use handler::Handler;
pub use incoming::{Incoming, Notice, PendingReferral, Referrals};
pub use message_ids::MessageIds;
pub use summary::Summary;
pub use tls::check_ca_file;
