//! The event catalogue: every integration event of the platform, the subject it is published on, the stream
//! that keeps it and the service that publishes it; the provider hand-off subjects; and every durable consumer,
//! with what it reads. It is the one place where a subject is spelled (`tests/anatomy/check.py` enforces it):
//! the outbox takes a typed event ([`IntegrationEvent`]), consumers dispatch by type, the NATS permissions of
//! each service are derived from it (`id77-nats-config`), and `docs/asyncapi.yaml` is checked against it.

use crate::{billing, catalogue, membership, requests, routing};

/// A JetStream stream: its logical name and subjects (before the deployment's prefix is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDef {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
}

/// The streams: one per publishing service, the provider hand-off and the dead letters.
pub mod streams {
    use super::StreamDef;

    pub const MEMBERSHIP: StreamDef = StreamDef { name: "MEMBERSHIP", subjects: &["id77.membership.>"] };
    pub const CATALOGUE: StreamDef = StreamDef { name: "CATALOGUE", subjects: &["id77.catalogue.>"] };
    pub const REQUESTS: StreamDef = StreamDef { name: "REQUESTS", subjects: &["id77.requests.>"] };
    pub const ROUTING: StreamDef = StreamDef { name: "ROUTING", subjects: &["id77.routing.>"] };
    pub const BILLING: StreamDef = StreamDef { name: "BILLING", subjects: &["id77.billing.>"] };
    /// Referrals to providers (`id77.referrals.<provider>.offered`) and their replies (`...reply`).
    pub const REFERRALS: StreamDef = StreamDef { name: "REFERRALS", subjects: &["id77.referrals.>"] };
    /// Messages a consumer gave up on, on `id77.deadletter.<durable>`.
    pub const DEADLETTER: StreamDef = StreamDef { name: "DEADLETTER", subjects: &["id77.deadletter.>"] };

    /// Every stream, in the order services ensure them.
    pub const ALL: [StreamDef; 7] = [MEMBERSHIP, CATALOGUE, REQUESTS, ROUTING, BILLING, REFERRALS, DEADLETTER];
}

/// A platform service that publishes integration events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Publisher {
    Membership,
    Catalogue,
    Requests,
    Routing,
    Billing,
}

impl Publisher {
    pub const ALL: [Publisher; 5] =
        [Publisher::Membership, Publisher::Catalogue, Publisher::Requests, Publisher::Routing, Publisher::Billing];

    /// The service's name (its NATS user, its durables' prefix).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Membership => "membership",
            Self::Catalogue => "catalogue",
            Self::Requests => "requests",
            Self::Routing => "routing",
            Self::Billing => "billing",
        }
    }

    /// The stream that keeps its integration events; no other service publishes on its subjects.
    pub const fn stream(self) -> StreamDef {
        match self {
            Self::Membership => streams::MEMBERSHIP,
            Self::Catalogue => streams::CATALOGUE,
            Self::Requests => streams::REQUESTS,
            Self::Routing => streams::ROUTING,
            Self::Billing => streams::BILLING,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// An integration event: a protobuf message that knows its subject, its stream and its publisher.
pub trait IntegrationEvent: prost::Message + prost::Name + Default + 'static {
    /// Logical subject, before the deployment's prefix.
    const SUBJECT: &'static str;
    const PUBLISHER: Publisher;
    /// The stream that keeps it (its publisher's).
    const STREAM: StreamDef = Self::PUBLISHER.stream();
}

/// One row of the catalogue, for what reads it as data (permissions, the AsyncAPI check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    pub subject: &'static str,
    /// Protobuf full name, also the `Id77-Event-Type` header (e.g. `id77.requests.v1.RequestSubmitted`).
    pub type_name: String,
    pub publisher: Publisher,
}

macro_rules! catalogue {
    ($($publisher:ident { $($ty:ty => $subject:literal,)* })*) => {
        $($(
            impl IntegrationEvent for $ty {
                const SUBJECT: &'static str = $subject;
                const PUBLISHER: Publisher = Publisher::$publisher;
            }
        )*)*

        /// Every integration event, by publisher.
        pub fn all() -> Vec<EventInfo> {
            vec![$($(EventInfo {
                subject: $subject,
                type_name: <$ty as prost::Name>::full_name(),
                publisher: Publisher::$publisher,
            },)*)*]
        }
    };
}

catalogue! {
    Membership {
        membership::v1::MemberApplied => "id77.membership.member.applied",
        membership::v1::MemberApproved => "id77.membership.member.approved",
        membership::v1::MemberRefused => "id77.membership.member.refused",
        membership::v1::MemberUpdated => "id77.membership.member.updated",
        membership::v1::UserChanged => "id77.membership.user.changed",
        membership::v1::AccessRevoked => "id77.membership.access.revoked",
    }
    Catalogue {
        catalogue::v1::OfferPublished => "id77.catalogue.offer.published",
        catalogue::v1::OfferUpdated => "id77.catalogue.offer.updated",
        catalogue::v1::OfferArchived => "id77.catalogue.offer.archived",
        catalogue::v1::BookingConfirmed => "id77.catalogue.booking.confirmed",
        catalogue::v1::BookingReleased => "id77.catalogue.booking.released",
        catalogue::v1::SessionScheduled => "id77.catalogue.session.scheduled",
        catalogue::v1::SessionCancelled => "id77.catalogue.session.cancelled",
        catalogue::v1::SessionHeld => "id77.catalogue.session.held",
        catalogue::v1::SessionReminderDue => "id77.catalogue.session.reminder_due",
        catalogue::v1::RegistrationConfirmed => "id77.catalogue.registration.confirmed",
        catalogue::v1::RegistrationWaitlisted => "id77.catalogue.registration.waitlisted",
        catalogue::v1::RegistrationPromoted => "id77.catalogue.registration.promoted",
        catalogue::v1::RegistrationCancelled => "id77.catalogue.registration.cancelled",
    }
    Requests {
        requests::v1::RequestSubmitted => "id77.requests.request.submitted",
        requests::v1::RequestCancelled => "id77.requests.request.cancelled",
        requests::v1::RequestCompleted => "id77.requests.request.completed",
        requests::v1::RequestStatusChanged => "id77.requests.request.status_changed",
        requests::v1::MessagePosted => "id77.requests.message.posted",
    }
    Routing {
        routing::v1::ReferralOffered => "id77.routing.referral.offered",
        routing::v1::ReferralAccepted => "id77.routing.referral.accepted",
        routing::v1::ReferralDeclined => "id77.routing.referral.declined",
        routing::v1::ReferralCompleted => "id77.routing.referral.completed",
        routing::v1::ReferralProgressed => "id77.routing.referral.progressed",
        routing::v1::ReferralExpired => "id77.routing.referral.expired",
        routing::v1::ReferralWithdrawn => "id77.routing.referral.withdrawn",
        routing::v1::ReferralReminded => "id77.routing.referral.reminded",
        routing::v1::ReferralEscalated => "id77.routing.referral.escalated",
    }
    Billing {
        billing::v1::QuoteIssued => "id77.billing.quote.issued",
        billing::v1::QuoteAccepted => "id77.billing.quote.accepted",
        billing::v1::QuoteRefused => "id77.billing.quote.refused",
        billing::v1::QuoteVoided => "id77.billing.quote.voided",
        billing::v1::QuoteExpired => "id77.billing.quote.expired",
        billing::v1::InvoiceIssued => "id77.billing.invoice.issued",
        billing::v1::InvoiceSent => "id77.billing.invoice.sent",
        billing::v1::InvoicePaid => "id77.billing.invoice.paid",
        billing::v1::CreditNoteIssued => "id77.billing.credit_note.issued",
    }
}

/// The provider hand-off (stream REFERRALS): what routing sends a provider and what the provider's own consumer
/// answers. A provider code is a subject token ([`is_valid_subject_token`]).
pub mod provider {
    /// Where a provider receives its referrals: [`crate::routing::v1::ReferralOffered`], and with the
    /// `Id77-Event-Type` header, [`crate::routing::v1::ReferralWithdrawn`] and [`crate::routing::v1::ReferralReminded`]
    /// (the provider's consumer reads one subject only).
    pub fn offered(provider_code: &str) -> String {
        format!("id77.referrals.{provider_code}.offered")
    }

    /// Where a provider answers: [`crate::routing::v1::ReferralReply`], and with the `Id77-Event-Type` header,
    /// [`crate::routing::v1::ReferralProgress`].
    pub fn reply(provider_code: &str) -> String {
        format!("id77.referrals.{provider_code}.reply")
    }

    /// Every provider's referrals: what routing publishes on the REFERRALS stream (never the replies).
    pub const ALL_OFFERED: &str = "id77.referrals.*.offered";
    /// Every provider's replies: what routing reads.
    pub const ALL_REPLIES: &str = "id77.referrals.*.reply";

    /// The provider code of a hand-off subject (`id77.referrals.<code>.<offered|reply>`), if it is one.
    pub fn code_of(subject: &str) -> Option<&str> {
        let rest = subject.strip_prefix("id77.referrals.")?;
        let (code, kind) = rest.split_once('.')?;
        (matches!(kind, "offered" | "reply") && super::is_valid_subject_token(code)).then_some(code)
    }
}

/// The header that names a message's protobuf type (e.g. `id77.requests.v1.RequestSubmitted`): set by every
/// outbox relay, read by consumers to tell apart the types that share a subject (a provider's hand-off).
pub const EVENT_TYPE_HEADER: &str = "Id77-Event-Type";

/// Every subject of the platform (what a service may read).
pub const EVERYTHING: &str = "id77.>";

/// The dead-letter subject of a durable consumer: where it parks a message it gave up on.
pub fn deadletter(durable: &str) -> String {
    format!("id77.deadletter.{durable}")
}

/// A provider code is also a subject token: lowercase ASCII letters, digits and dashes only.
pub fn is_valid_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a durable consumer reads: a stream and a filter subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub stream: StreamDef,
    pub filter: &'static str,
}

impl Subscription {
    /// Exactly one event type.
    pub const fn of<E: IntegrationEvent>() -> Self {
        Self { stream: E::STREAM, filter: E::SUBJECT }
    }
}

/// Subscriptions to a family of events.
pub mod families {
    use super::{Subscription, streams};

    /// `member.applied`, `member.approved`, `member.refused`, `member.updated`.
    pub const MEMBERS: Subscription = Subscription { stream: streams::MEMBERSHIP, filter: "id77.membership.member.>" };
    /// `user.changed`.
    pub const USERS: Subscription = Subscription { stream: streams::MEMBERSHIP, filter: "id77.membership.user.>" };
    /// `access.revoked`.
    pub const REVOCATIONS: Subscription =
        Subscription { stream: streams::MEMBERSHIP, filter: "id77.membership.access.revoked" };
    /// `offer.published`, `offer.updated`, `offer.archived`.
    pub const OFFERS: Subscription = Subscription { stream: streams::CATALOGUE, filter: "id77.catalogue.offer.>" };
    /// Every `id77.routing.referral.*` event.
    pub const REFERRALS: Subscription = Subscription { stream: streams::ROUTING, filter: "id77.routing.referral.>" };
    /// Every quote event (`id77.billing.quote.*`).
    pub const QUOTES: Subscription = Subscription { stream: streams::BILLING, filter: "id77.billing.quote.>" };
    /// `session.scheduled`, `session.cancelled`, `session.held`, `session.reminder_due`.
    pub const SESSIONS: Subscription = Subscription { stream: streams::CATALOGUE, filter: "id77.catalogue.session.>" };
    /// `registration.confirmed`, `registration.waitlisted`, `registration.promoted`, `registration.cancelled`.
    pub const REGISTRATIONS: Subscription =
        Subscription { stream: streams::CATALOGUE, filter: "id77.catalogue.registration.>" };
    /// Every provider's replies (routing).
    pub const PROVIDER_REPLIES: Subscription =
        Subscription { stream: streams::REFERRALS, filter: super::provider::ALL_REPLIES };
}

/// A durable consumer of a platform service: its name (shared by the service's replicas, which split the work)
/// and what it reads. Each dead-letters on [`deadletter`]`(durable)`, which its service's NATS user may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    pub service: Publisher,
    pub name: &'static str,
    pub reads: Subscription,
}

/// Every durable consumer of the platform services.
pub mod durables {
    use super::Publisher::{Billing, Catalogue, Requests, Routing};
    use super::{Durable, Subscription, families};
    use crate::{billing, catalogue, requests, routing};

    pub const CATALOGUE_MEMBERS: Durable =
        Durable { service: Catalogue, name: "catalogue-members", reads: families::MEMBERS };
    pub const CATALOGUE_REFERRALS: Durable =
        Durable { service: Catalogue, name: "catalogue-referrals", reads: families::REFERRALS };

    pub const REQUESTS_MEMBERS: Durable =
        Durable { service: Requests, name: "requests-members", reads: families::MEMBERS };
    pub const REQUESTS_OFFERS: Durable =
        Durable { service: Requests, name: "requests-offers", reads: families::OFFERS };
    pub const REQUESTS_REFERRALS: Durable =
        Durable { service: Requests, name: "requests-referrals", reads: families::REFERRALS };
    pub const REQUESTS_USERS: Durable = Durable { service: Requests, name: "requests-users", reads: families::USERS };
    pub const REQUESTS_QUOTES: Durable =
        Durable { service: Requests, name: "requests-quotes", reads: families::QUOTES };
    /// `invoice.issued`: the member's users are mailed (issue 21).
    pub const REQUESTS_INVOICES: Durable = Durable {
        service: Requests,
        name: "requests-invoices",
        reads: Subscription::of::<billing::v1::InvoiceIssued>(),
    };
    /// Training sessions (issue 22): the participants are mailed on a cancellation and before the session; the
    /// sessions are kept for the registration mails (ADR 0016).
    pub const REQUESTS_SESSIONS: Durable =
        Durable { service: Requests, name: "requests-sessions", reads: families::SESSIONS };
    /// Registrations (issue 22): the participant is mailed when confirmed, waitlisted, promoted or cancelled.
    pub const REQUESTS_REGISTRATIONS: Durable =
        Durable { service: Requests, name: "requests-registrations", reads: families::REGISTRATIONS };

    pub const ROUTING_OFFERS: Durable = Durable { service: Routing, name: "routing-offers", reads: families::OFFERS };
    pub const ROUTING_MEMBERS: Durable =
        Durable { service: Routing, name: "routing-members", reads: families::MEMBERS };
    pub const ROUTING_REQUESTS: Durable = Durable {
        service: Routing,
        name: "routing-requests",
        reads: Subscription::of::<requests::v1::RequestSubmitted>(),
    };
    pub const ROUTING_CANCELLATIONS: Durable = Durable {
        service: Routing,
        name: "routing-cancellations",
        reads: Subscription::of::<requests::v1::RequestCancelled>(),
    };
    pub const ROUTING_QUOTES: Durable =
        Durable { service: Routing, name: "routing-quotes", reads: Subscription::of::<billing::v1::QuoteAccepted>() };
    pub const ROUTING_REPLIES: Durable =
        Durable { service: Routing, name: "routing-replies", reads: families::PROVIDER_REPLIES };

    pub const BILLING_OFFERS: Durable = Durable { service: Billing, name: "billing-offers", reads: families::OFFERS };
    pub const BILLING_REFERRALS: Durable = Durable {
        service: Billing,
        name: "billing-referrals",
        reads: Subscription::of::<routing::v1::ReferralAccepted>(),
    };
    pub const BILLING_REQUEST_COMPLETIONS: Durable = Durable {
        service: Billing,
        name: "billing-request-completions",
        reads: Subscription::of::<requests::v1::RequestCompleted>(),
    };
    pub const BILLING_REQUEST_CANCELLATIONS: Durable = Durable {
        service: Billing,
        name: "billing-request-cancellations",
        reads: Subscription::of::<requests::v1::RequestCancelled>(),
    };
    pub const BILLING_MEMBERS: Durable =
        Durable { service: Billing, name: "billing-members", reads: families::MEMBERS };
    /// Held training sessions (issue 22): each member is invoiced per participant who attended (ADR 0016).
    pub const BILLING_SESSIONS: Durable =
        Durable { service: Billing, name: "billing-sessions", reads: Subscription::of::<catalogue::v1::SessionHeld>() };

    /// Every durable, by service.
    pub const ALL: [Durable; 22] = [
        CATALOGUE_MEMBERS,
        CATALOGUE_REFERRALS,
        REQUESTS_MEMBERS,
        REQUESTS_OFFERS,
        REQUESTS_REFERRALS,
        REQUESTS_USERS,
        REQUESTS_QUOTES,
        REQUESTS_INVOICES,
        REQUESTS_SESSIONS,
        REQUESTS_REGISTRATIONS,
        ROUTING_OFFERS,
        ROUTING_MEMBERS,
        ROUTING_REQUESTS,
        ROUTING_CANCELLATIONS,
        ROUTING_QUOTES,
        ROUTING_REPLIES,
        BILLING_OFFERS,
        BILLING_REFERRALS,
        BILLING_REQUEST_COMPLETIONS,
        BILLING_REQUEST_CANCELLATIONS,
        BILLING_MEMBERS,
        BILLING_SESSIONS,
    ];
}

/// The events the gateway's live updates (`GET /v1/events`) follow, with core NATS subscriptions: the gateway's
/// NATS user may subscribe to these (and to [`families::REVOCATIONS`]) and nothing else.
pub const LIVE: [&str; 3] = [
    <requests::v1::RequestStatusChanged as IntegrationEvent>::SUBJECT,
    <requests::v1::MessagePosted as IntegrationEvent>::SUBJECT,
    <routing::v1::ReferralOffered as IntegrationEvent>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_is_under_its_publishers_stream_and_unique() {
        let all = all();
        for e in &all {
            let stem = e.publisher.stream().subjects[0].trim_end_matches('>');
            assert!(e.subject.starts_with(stem), "{} is not under {stem}", e.subject);
            assert!(e.type_name.starts_with(&format!("id77.{}.v1.", e.publisher.name())), "{}", e.type_name);
        }
        let mut subjects: Vec<_> = all.iter().map(|e| e.subject).collect();
        subjects.sort_unstable();
        subjects.dedup();
        assert_eq!(subjects.len(), all.len(), "a subject is listed twice");
    }

    #[test]
    fn durables_are_named_after_their_service_and_unique() {
        let mut names: Vec<_> = durables::ALL.iter().map(|d| d.name).collect();
        for d in durables::ALL {
            assert!(d.name.starts_with(&format!("{}-", d.service.name())), "{}", d.name);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), durables::ALL.len());
    }

    #[test]
    fn provider_subjects_round_trip_and_cannot_escape() {
        assert_eq!(provider::offered("caue77"), "id77.referrals.caue77.offered");
        assert_eq!(provider::code_of(&provider::reply("dir-eau")), Some("dir-eau"));
        assert_eq!(provider::code_of("id77.referrals.a.b.reply"), None);
        assert!(is_valid_subject_token("caue77") && is_valid_subject_token("dir-routes"));
        for bad in ["", "a.b", "*", ">", "A", "a b"] {
            assert!(!is_valid_subject_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_typed_event_knows_its_stream() {
        assert_eq!(<requests::v1::RequestSubmitted as IntegrationEvent>::STREAM, streams::REQUESTS);
        assert_eq!(durables::ROUTING_QUOTES.reads.filter, "id77.billing.quote.accepted");
    }
}
