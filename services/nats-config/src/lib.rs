//! The NATS side of access control: who may publish and subscribe to what, enforced by the server.
//!
//! [`generate`] writes, into one folder:
//! - `nats-server.conf`: listen address, JetStream store, and an `authorization` block with one NKEY user per
//!   platform service ([`SERVICES`]) and one per provider, each with exact allow-lists ([`service_permissions`],
//!   [`provider_permissions`]). No deny rules, and no `$JS.>` for providers (nats-server before 2.10 let a user
//!   allowed on `$JS.>` reach admin APIs, and queue subscriptions bypassed deny rules). There is no
//!   `no_auth_user`: a connection without a known NKEY is refused;
//!   The gateway has a user too ([`GATEWAY`], [`gateway_permissions`]): it only subscribes to the few subjects of
//!   its live updates and to membership's access revocations, and asks JetStream for the DEADLETTER stream's and
//!   the durable consumers' info (read only, exact subjects, its own inbox prefix) for `GET /v1/operations`;
//! - `<user>.nk`: each user's NKEY seed (mode 0600), `membership.nk` ... `billing.nk`, `gateway.nk` and
//!   `provider-<code>.nk`.
//!   Seeds already in the folder are reused, so re-running gives the same configuration and never rotates a
//!   credential; delete a seed file to rotate that user's key;
//! - `users.json`: user → kind, provider code, public key and seed file name (no secrets);
//! - `authorization.conf`: the `authorization` block alone ([`AUTHORIZATION_CONF`]), for a server configured
//!   elsewhere (the official NATS Helm chart includes it, `deploy/nats/values.yaml`).
//!
//! With [`Tls`] ([`Options::with_tls`]), the client listener gets a `tls` block: partners connect from outside with
//! `tls://` and the CA, still as their NKEY user, and a client that does not do TLS is refused (ADR 0014,
//! "Partners over TLS").
//!
//! The providers come from the platform image alone ([`ProviderSources`]): codes given (`--provider`,
//! `ID77_PROVIDERS`, e.g. the chart's `providers:`), the catalogue's database ([`providers_from_database`]) or a
//! seed file; a source checkout's seed ([`DEV_CATALOGUE_SEED`]) only as the development default.
//!
//! A provider's user can only read its own referrals, through its own durable consumer `provider-<code>`, and
//! publish on its own reply subject; it has no create permission, so [`ensure_consumers`] (run as a service user)
//! creates the consumers beforehand with the same definition the referral consumer uses.

mod consumers;
mod generate;
mod options;
mod permissions;
mod providers;

pub use consumers::{EnsuredConsumers, ensure_consumers};
pub use generate::*;
pub use options::{Options, Tls, validate_providers};
pub use permissions::*;
pub use providers::*;

#[cfg(test)]
mod tests;
