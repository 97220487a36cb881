//! `access.revoked`, written in the caller's transaction by every flow that ends sessions.

use chrono::{DateTime, Utc};
use id77_platform::{outbox, time};
use id77_proto::membership::v1::AccessRevoked;
use sqlx::PgConnection;
use uuid::Uuid;

/// Publishes `access.revoked` (in the caller's transaction): the access tokens of `session`, or with `None` every
/// token of `user_id` issued until `at`, stop working in every service within seconds instead of living until
/// they expire (see `id77_platform::revocation`).
pub(super) async fn announce_revocation(
    conn: &mut PgConnection,
    user_id: Uuid,
    session: Option<Uuid>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let lifetime = id77_platform::revocation::lifetime();
    let lifetime = chrono::TimeDelta::from_std(lifetime).unwrap_or(chrono::TimeDelta::minutes(11));
    let event = AccessRevoked {
        user_id: user_id.to_string(),
        session_id: session.map(|s| s.to_string()).unwrap_or_default(),
        reason: reason.to_owned(),
        revoked_at: Some(time::to_proto(at)),
        valid_until: Some(time::to_proto(at + lifetime)),
    };
    outbox::enqueue(conn, &event).await.map(|_| ())
}
