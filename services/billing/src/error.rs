//! Billing's refusals: what a caller asked for and billing's rules do not allow, each with the code and the
//! stable reason clients branch on (the platform maps them once to a gRPC status and, at the gateway, to
//! problem+json).

use id77_platform::{DomainError, ErrorCode};

use crate::domain::QuoteStatus;

/// Why billing refuses a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingError {
    /// IssueCreditNote by anyone but the coordinator.
    CoordinatorOnly,
    /// MarkInvoice by anyone but the coordinator or a provider's agent.
    CoordinatorOrIssuerOnly,
    /// The invoice already has its credit note.
    InvoiceCancelled { number: String },
    /// The invoice's status does not allow the mark (`domain::mark` says why).
    InvoiceStatus { number: String, reason: &'static str },
    /// The quote is no longer proposed: a member admin cannot decide on it any more.
    QuoteNotProposed { number: String, from: QuoteStatus },
    /// The quote of an offer priced on quote has no amount yet: nothing to agree to.
    AmountNotStated { number: String },
}

impl std::fmt::Display for BillingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CoordinatorOnly => f.write_str("only the coordinator issues credit notes"),
            Self::CoordinatorOrIssuerOnly => {
                f.write_str("only the coordinator or the issuing provider marks an invoice sent or paid")
            }
            Self::InvoiceCancelled { number } => write!(f, "invoice {number} is already cancelled by a credit note"),
            Self::InvoiceStatus { number, reason } => write!(f, "invoice {number}: {reason}"),
            Self::QuoteNotProposed { number, from } => write!(f, "quote {number} {}", from.explain()),
            Self::AmountNotStated { number } => {
                write!(f, "quote {number} has no amount yet: the provider must state it before it can be accepted")
            }
        }
    }
}

impl std::error::Error for BillingError {}

impl DomainError for BillingError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::CoordinatorOnly | Self::CoordinatorOrIssuerOnly => ErrorCode::PermissionDenied,
            Self::InvoiceCancelled { .. }
            | Self::InvoiceStatus { .. }
            | Self::QuoteNotProposed { .. }
            | Self::AmountNotStated { .. } => ErrorCode::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::CoordinatorOnly => "COORDINATOR_ONLY",
            Self::CoordinatorOrIssuerOnly => "COORDINATOR_OR_ISSUER_ONLY",
            Self::InvoiceCancelled { .. } => "INVOICE_CANCELLED",
            Self::InvoiceStatus { .. } => "INVOICE_STATUS",
            Self::QuoteNotProposed { .. } | Self::AmountNotStated { .. } => "INVALID_TRANSITION",
        }
    }
}

#[cfg(test)]
mod tests {
    use id77_platform::ServiceError;

    use super::*;

    #[test]
    fn every_refusal_keeps_its_code_reason_and_message() {
        let cases = [
            (
                BillingError::CoordinatorOnly,
                ErrorCode::PermissionDenied,
                "COORDINATOR_ONLY",
                "only the coordinator issues credit notes",
            ),
            (
                BillingError::CoordinatorOrIssuerOnly,
                ErrorCode::PermissionDenied,
                "COORDINATOR_OR_ISSUER_ONLY",
                "only the coordinator or the issuing provider marks an invoice sent or paid",
            ),
            (
                BillingError::InvoiceCancelled { number: "F-caue77-2026-000001".into() },
                ErrorCode::FailedPrecondition,
                "INVOICE_CANCELLED",
                "invoice F-caue77-2026-000001 is already cancelled by a credit note",
            ),
            (
                BillingError::InvoiceStatus { number: "F-x-2026-000002".into(), reason: "the invoice is already paid" },
                ErrorCode::FailedPrecondition,
                "INVOICE_STATUS",
                "invoice F-x-2026-000002: the invoice is already paid",
            ),
            (
                BillingError::QuoteNotProposed { number: "D-x-2026-000003".into(), from: QuoteStatus::Voided },
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                "quote D-x-2026-000003 is voided: the request was cancelled",
            ),
            (
                BillingError::AmountNotStated { number: "D-x-2026-000004".into() },
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                "quote D-x-2026-000004 has no amount yet: the provider must state it before it can be accepted",
            ),
        ];
        for (error, code, reason, message) in cases {
            let error = ServiceError::from(error);
            assert_eq!((error.code, error.reason.as_ref(), error.message.as_str()), (code, reason, message));
        }
    }
}
