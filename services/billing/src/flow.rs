//! Billing's use cases, each on one transaction that also writes its integration events (outbox): a quote's
//! life (`quotes`: proposed on a referral's acceptance, decided by a member admin, voided by the request's
//! cancellation, expired by the sweeper), invoicing (`invoices`: an invoice for a completed request, a credit
//! note cancelling it, an invoice marked sent or paid) and the invoices of held training sessions (`sessions`).
//! gRPC and event handlers map their input, call a flow and map its outcome; the rules are `domain`'s and
//! `access`'s, the SQL `store`'s.

pub mod invoices;
pub mod quotes;
pub mod sessions;

use id77_platform::auth::Denied;
use id77_platform::{HandleError, ServiceError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::BillingError;
use crate::parties::{Issuers, Party, ProviderFacts};
use crate::store;

/// Why a use case did not happen.
#[derive(Debug)]
pub enum FlowError {
    /// A rule of billing refuses the call.
    Refused(BillingError),
    /// The caller may not touch this document; `what` and `id` name it in the answer.
    Denied {
        denied: Denied,
        what: &'static str,
        id: Uuid,
    },
    /// A field of the call is invalid.
    Invalid {
        field: &'static str,
        description: &'static str,
    },
    /// A read model is not fed yet (another service's event still on its way): an event is retried later.
    NotYet(String),
    /// An event contradicts what billing knows and can never apply: it is dead-lettered.
    Rejected(String),
    Db(sqlx::Error),
}

impl FlowError {
    /// `what` `id` does not exist (or is not the caller's to see).
    pub fn not_found(what: &'static str, id: Uuid) -> Self {
        Self::Denied { denied: Denied::NotFound, what, id }
    }
}

impl From<sqlx::Error> for FlowError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<BillingError> for FlowError {
    fn from(e: BillingError) -> Self {
        Self::Refused(e)
    }
}

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(e) => e.fmt(f),
            Self::Denied { denied, what, id } => write!(f, "{what} {id}: {denied:?}"),
            Self::Invalid { field, description } => write!(f, "{field} {description}"),
            Self::NotYet(why) | Self::Rejected(why) => f.write_str(why),
            Self::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for FlowError {}

impl From<FlowError> for ServiceError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Refused(e) => e.into(),
            FlowError::Denied { denied, what, id } => denied.into_error(what, &id.to_string()),
            FlowError::Invalid { field, description } => ServiceError::invalid(field, description),
            FlowError::Db(e) => e.into(),
            // Only events wait for read models or get rejected; a call never reaches these.
            FlowError::NotYet(why) | FlowError::Rejected(why) => ServiceError::internal("billing", why),
        }
    }
}

impl From<FlowError> for HandleError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::NotYet(why) => HandleError::Retry(anyhow::anyhow!(why)),
            FlowError::Db(e) => e.into(),
            FlowError::Rejected(why) => HandleError::Reject(anyhow::anyhow!(why)),
            other => HandleError::Reject(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// The seller of a document issued by `issuer_code`, from the issuer registry and the provider read model; a
/// provider without a known legal identity is retried (its offer event, or the registry entry, may be missing).
async fn seller(conn: &mut PgConnection, issuers: &Issuers, issuer_code: &str) -> Result<Party, FlowError> {
    let provider = store::provider(conn, issuer_code).await?;
    seller_of(issuers, issuer_code, provider.as_ref())
}

/// [`seller`] with the provider already read (None: unknown to billing).
fn seller_of(issuers: &Issuers, issuer_code: &str, provider: Option<&ProviderFacts>) -> Result<Party, FlowError> {
    issuers.seller(issuer_code, provider).ok_or_else(|| {
        FlowError::NotYet(format!(
            "no legal identity for issuer {issuer_code:?}: neither an entry in the issuer registry nor a known \
             departmental service"
        ))
    })
}
