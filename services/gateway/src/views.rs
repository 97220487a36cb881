//! The JSON the gateway speaks: snake_case fields, enums as lowercase strings, timestamps in RFC 3339 (UTC),
//! absent optional values as `null`. Each view is built from its protobuf message; the enum mappings go both
//! ways for filters.

use chrono::{DateTime, SecondsFormat};
use id77_platform::auth::Role;
use id77_proto::billing::v1 as billing;
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::membership::v1 as membership;
use id77_proto::prost_types::Timestamp;
use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;
use serde::Serialize;

/// Every list: a page of items and the cursor of the next page (`null` on the last).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new<P>(items: Vec<P>, next_page_token: String) -> Self
    where
        T: From<P>,
    {
        Self { items: items.into_iter().map(T::from).collect(), next_cursor: non_empty(next_page_token) }
    }
}

fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

/// RFC 3339 in UTC (`2025-01-31T09:30:00.123456Z`), `None` when absent or out of range.
pub fn timestamp(ts: Option<&Timestamp>) -> Option<String> {
    let ts = ts?;
    let at = DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

// ---- enums -------------------------------------------------------------------------------------------------

pub const UNSPECIFIED: &str = "unspecified";

pub fn collectivity_kind(kind: i32) -> &'static str {
    match membership::CollectivityKind::try_from(kind) {
        Ok(membership::CollectivityKind::Commune) => "commune",
        Ok(membership::CollectivityKind::Epci) => "epci",
        Ok(membership::CollectivityKind::Syndicat) => "syndicat",
        _ => UNSPECIFIED,
    }
}

pub fn parse_collectivity_kind(value: &str) -> Option<membership::CollectivityKind> {
    match value {
        "commune" => Some(membership::CollectivityKind::Commune),
        "epci" => Some(membership::CollectivityKind::Epci),
        "syndicat" => Some(membership::CollectivityKind::Syndicat),
        _ => None,
    }
}

pub fn member_status(status: i32) -> &'static str {
    match membership::MemberStatus::try_from(status) {
        Ok(membership::MemberStatus::Pending) => "pending",
        Ok(membership::MemberStatus::Active) => "active",
        Ok(membership::MemberStatus::Suspended) => "suspended",
        Ok(membership::MemberStatus::Withdrawn) => "withdrawn",
        _ => UNSPECIFIED,
    }
}

pub fn parse_member_status(value: &str) -> Option<membership::MemberStatus> {
    match value {
        "pending" => Some(membership::MemberStatus::Pending),
        "active" => Some(membership::MemberStatus::Active),
        "suspended" => Some(membership::MemberStatus::Suspended),
        "withdrawn" => Some(membership::MemberStatus::Withdrawn),
        _ => None,
    }
}

pub fn offer_category(category: i32) -> &'static str {
    match catalogue::OfferCategory::try_from(category) {
        Ok(catalogue::OfferCategory::IntegratedEngineering) => "integrated_engineering",
        Ok(catalogue::OfferCategory::AwarenessTraining) => "awareness_training",
        Ok(catalogue::OfferCategory::ExhibitionLoan) => "exhibition_loan",
        _ => UNSPECIFIED,
    }
}

pub fn parse_offer_category(value: &str) -> Option<catalogue::OfferCategory> {
    match value {
        "integrated_engineering" => Some(catalogue::OfferCategory::IntegratedEngineering),
        "awareness_training" => Some(catalogue::OfferCategory::AwarenessTraining),
        "exhibition_loan" => Some(catalogue::OfferCategory::ExhibitionLoan),
        _ => None,
    }
}

pub fn provider_kind(kind: i32) -> &'static str {
    match catalogue::ProviderKind::try_from(kind) {
        Ok(catalogue::ProviderKind::DepartmentalService) => "departmental_service",
        Ok(catalogue::ProviderKind::AssociatedOrganisation) => "associated_organisation",
        _ => UNSPECIFIED,
    }
}

pub fn request_status(status: i32) -> &'static str {
    match requests::RequestStatus::try_from(status) {
        Ok(requests::RequestStatus::Submitted) => "submitted",
        Ok(requests::RequestStatus::Referred) => "referred",
        Ok(requests::RequestStatus::Accepted) => "accepted",
        Ok(requests::RequestStatus::Declined) => "declined",
        Ok(requests::RequestStatus::Cancelled) => "cancelled",
        Ok(requests::RequestStatus::Completed) => "completed",
        Ok(requests::RequestStatus::Triage) => "triage",
        Ok(requests::RequestStatus::InProgress) => "in_progress",
        Ok(requests::RequestStatus::Closed) => "closed",
        _ => UNSPECIFIED,
    }
}

pub fn referral_status(status: i32) -> &'static str {
    match routing::ReferralStatus::try_from(status) {
        Ok(routing::ReferralStatus::Offered) => "offered",
        Ok(routing::ReferralStatus::Accepted) => "accepted",
        Ok(routing::ReferralStatus::Declined) => "declined",
        Ok(routing::ReferralStatus::Expired) => "expired",
        Ok(routing::ReferralStatus::Withdrawn) => "withdrawn",
        _ => UNSPECIFIED,
    }
}

/// A quote's status: `proposed` (`QUOTE_STATUS_ISSUED` on the wire) → `accepted` | `refused` | `voided` |
/// `expired` (ADR 0013).
pub fn quote_status(status: i32) -> &'static str {
    match billing::QuoteStatus::try_from(status) {
        Ok(billing::QuoteStatus::Issued) => "proposed",
        Ok(billing::QuoteStatus::Accepted) => "accepted",
        Ok(billing::QuoteStatus::Refused) => "refused",
        Ok(billing::QuoteStatus::Voided) => "voided",
        Ok(billing::QuoteStatus::Expired) => "expired",
        _ => UNSPECIFIED,
    }
}

/// Whether the provider may work on a referral: `not_required` (free offer, or not accepted yet; also what a
/// referral from before the agreement existed says), `awaiting_member` (a billed offer whose quote no member
/// admin has accepted yet), `agreed`.
pub fn quote_agreement(agreement: i32) -> &'static str {
    match routing::QuoteAgreement::try_from(agreement) {
        Ok(routing::QuoteAgreement::AwaitingMember) => "awaiting_member",
        Ok(routing::QuoteAgreement::Agreed) => "agreed",
        _ => "not_required",
    }
}

// ---- membership --------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct Collectivity {
    pub siren: String,
    pub name: String,
    pub kind: &'static str,
    /// Communes only.
    pub insee_code: Option<String>,
    pub departement: String,
    pub population: i64,
    pub postal_codes: Vec<String>,
    /// A commune's EPCI, if in the directory.
    pub epci_siren: Option<String>,
    /// An EPCI's legal form (CC, CA, CU, METRO...).
    pub legal_form: Option<String>,
}

impl From<membership::Collectivity> for Collectivity {
    fn from(c: membership::Collectivity) -> Self {
        Self {
            kind: collectivity_kind(c.kind),
            siren: c.siren,
            name: c.name,
            insee_code: non_empty(c.insee_code),
            departement: c.departement,
            population: c.population,
            postal_codes: c.postal_codes,
            epci_siren: non_empty(c.epci_siren),
            legal_form: non_empty(c.legal_form),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Member {
    pub id: String,
    pub siren: String,
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub contact_name: String,
    pub contact_email: String,
    pub applied_at: Option<String>,
    pub approved_at: Option<String>,
    /// The Département agent who follows this member, once the coordinator assigned one.
    pub referent_user_id: Option<String>,
}

impl From<membership::Member> for Member {
    fn from(m: membership::Member) -> Self {
        Self {
            kind: collectivity_kind(m.kind),
            status: member_status(m.status),
            applied_at: timestamp(m.applied_at.as_ref()),
            approved_at: timestamp(m.approved_at.as_ref()),
            referent_user_id: non_empty(m.referent_user_id),
            id: m.id,
            siren: m.siren,
            name: m.name,
            contact_name: m.contact_name,
            contact_email: m.contact_email,
        }
    }
}

// ---- identity ---------------------------------------------------------------------------------------------

/// A role as JSON: the snake_case name of the tokens (`member_admin`...).
pub fn role(role: i32) -> &'static str {
    match proto_role(role) {
        Some(r) => r.as_str(),
        None => UNSPECIFIED,
    }
}

fn proto_role(role: i32) -> Option<Role> {
    match membership::Role::try_from(role).ok()? {
        membership::Role::MemberAdmin => Some(Role::MemberAdmin),
        membership::Role::MemberUser => Some(Role::MemberUser),
        membership::Role::ProviderAgent => Some(Role::ProviderAgent),
        membership::Role::Coordinator => Some(Role::Coordinator),
        membership::Role::Referent => Some(Role::Referent),
        membership::Role::Operator => Some(Role::Operator),
        membership::Role::Unspecified => None,
    }
}

/// A role of the tokens as the contract's enum.
pub fn role_to_proto(role: Role) -> membership::Role {
    match role {
        Role::MemberAdmin => membership::Role::MemberAdmin,
        Role::MemberUser => membership::Role::MemberUser,
        Role::ProviderAgent => membership::Role::ProviderAgent,
        Role::Coordinator => membership::Role::Coordinator,
        Role::Referent => membership::Role::Referent,
        Role::Operator => membership::Role::Operator,
    }
}

/// The answer of a login, a refresh or an invitation acceptance.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
}

impl From<membership::TokenPair> for TokenPair {
    fn from(t: membership::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            refresh_expires_in: t.refresh_expires_in,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: &'static str,
    /// For member_admin and member_user.
    pub member_id: Option<String>,
    /// For provider_agent.
    pub provider_code: Option<String>,
    /// False until the invitation is accepted.
    pub active: bool,
    pub created_at: Option<String>,
}

impl From<membership::User> for User {
    fn from(u: membership::User) -> Self {
        Self {
            role: role(u.role),
            created_at: timestamp(u.created_at.as_ref()),
            member_id: non_empty(u.member_id),
            provider_code: non_empty(u.provider_code),
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Referent {
    pub user_id: String,
    pub display_name: String,
    pub email: String,
}

/// `GET /v1/me`: the caller, with its member's referent (null when none, or not a member's user).
#[derive(Debug, Serialize)]
pub struct Me {
    pub user: Option<User>,
    pub referent: Option<Referent>,
}

impl From<membership::Me> for Me {
    fn from(m: membership::Me) -> Self {
        Self {
            user: m.user.map(User::from),
            referent: m.referent.filter(|r| !r.user_id.is_empty()).map(|r| Referent {
                user_id: r.user_id,
                display_name: r.display_name,
                email: r.email,
            }),
        }
    }
}

/// `POST /v1/users`: the invited user and its one-time invitation token.
#[derive(Debug, Serialize)]
pub struct Invitation {
    pub user: Option<User>,
    /// Shown once; the invitee sets its password with it (`POST /v1/auth/invitations/accept`).
    pub invitation_token: String,
    pub expires_at: Option<String>,
}

impl From<membership::Invitation> for Invitation {
    fn from(i: membership::Invitation) -> Self {
        Self {
            user: i.user.map(User::from),
            expires_at: timestamp(i.expires_at.as_ref()),
            invitation_token: i.invitation_token,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditEvent {
    pub id: String,
    /// e.g. `login.succeeded`, `login.failed`, `account.locked`, `user.invited`.
    pub kind: String,
    pub actor_user_id: Option<String>,
    pub subject: String,
    pub client: Option<String>,
    pub detail: String,
    pub at: Option<String>,
}

impl From<membership::AuditEvent> for AuditEvent {
    fn from(e: membership::AuditEvent) -> Self {
        Self {
            at: timestamp(e.at.as_ref()),
            actor_user_id: non_empty(e.actor_user_id),
            client: non_empty(e.client),
            id: e.id,
            kind: e.kind,
            subject: e.subject,
            detail: e.detail,
        }
    }
}

/// `POST /v1/auth/keys/rotate`: the id of the new signing key.
#[derive(Debug, Serialize)]
pub struct RotatedKey {
    pub kid: String,
}

// ---- catalogue ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct Eligibility {
    /// Empty: every kind.
    pub member_kinds: Vec<&'static str>,
    pub min_population: Option<i64>,
    pub max_population: Option<i64>,
    pub epci_sirens: Vec<String>,
    pub arrondissements: Vec<String>,
}

impl From<catalogue::Eligibility> for Eligibility {
    fn from(e: catalogue::Eligibility) -> Self {
        Self {
            member_kinds: e.member_kinds.into_iter().map(member_kind).collect(),
            min_population: (e.min_population > 0).then_some(e.min_population),
            max_population: (e.max_population > 0).then_some(e.max_population),
            epci_sirens: e.epci_sirens,
            arrondissements: e.arrondissements,
        }
    }
}

pub fn member_kind(kind: i32) -> &'static str {
    match catalogue::MemberKind::try_from(kind) {
        Ok(catalogue::MemberKind::Commune) => "commune",
        Ok(catalogue::MemberKind::Epci) => "epci",
        Ok(catalogue::MemberKind::Syndicat) => "syndicat",
        _ => UNSPECIFIED,
    }
}

pub fn parse_member_kind(value: &str) -> Option<catalogue::MemberKind> {
    match value {
        "commune" => Some(catalogue::MemberKind::Commune),
        "epci" => Some(catalogue::MemberKind::Epci),
        "syndicat" => Some(catalogue::MemberKind::Syndicat),
        _ => None,
    }
}

pub fn price_kind(kind: i32) -> &'static str {
    match catalogue::PriceKind::try_from(kind) {
        Ok(catalogue::PriceKind::Free) => "free",
        Ok(catalogue::PriceKind::Flat) => "flat",
        Ok(catalogue::PriceKind::DailyRate) => "daily_rate",
        Ok(catalogue::PriceKind::PerInhabitant) => "per_inhabitant",
        Ok(catalogue::PriceKind::OnQuote) => "on_quote",
        _ => UNSPECIFIED,
    }
}

pub fn parse_price_kind(value: &str) -> Option<catalogue::PriceKind> {
    match value {
        "free" => Some(catalogue::PriceKind::Free),
        "flat" => Some(catalogue::PriceKind::Flat),
        "daily_rate" => Some(catalogue::PriceKind::DailyRate),
        "per_inhabitant" => Some(catalogue::PriceKind::PerInhabitant),
        "on_quote" => Some(catalogue::PriceKind::OnQuote),
        _ => None,
    }
}

pub fn offer_status(status: i32) -> &'static str {
    match catalogue::OfferStatus::try_from(status) {
        Ok(catalogue::OfferStatus::Draft) => "draft",
        Ok(catalogue::OfferStatus::Published) => "published",
        Ok(catalogue::OfferStatus::Archived) => "archived",
        _ => UNSPECIFIED,
    }
}

pub fn booking_status(status: i32) -> &'static str {
    match catalogue::BookingStatus::try_from(status) {
        Ok(catalogue::BookingStatus::Held) => "held",
        Ok(catalogue::BookingStatus::Confirmed) => "confirmed",
        Ok(catalogue::BookingStatus::Released) => "released",
        _ => UNSPECIFIED,
    }
}

/// A price rule; the amounts that do not apply to its kind are `null`.
#[derive(Debug, Serialize)]
pub struct PriceRule {
    pub kind: &'static str,
    pub amount_cents: Option<i64>,
    pub days: Option<i32>,
    pub floor_cents: Option<i64>,
    pub cap_cents: Option<i64>,
}

impl From<catalogue::PriceRule> for PriceRule {
    fn from(p: catalogue::PriceRule) -> Self {
        let kind = price_kind(p.kind);
        let amount = matches!(kind, "flat" | "daily_rate" | "per_inhabitant");
        let per_inhabitant = kind == "per_inhabitant";
        Self {
            kind,
            amount_cents: amount.then_some(p.amount_cents),
            days: (kind == "daily_rate").then_some(p.days),
            floor_cents: per_inhabitant.then_some(p.floor_cents),
            cap_cents: (per_inhabitant && p.cap_cents > 0).then_some(p.cap_cents),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Offer {
    pub id: String,
    pub code: String,
    pub title: String,
    pub summary: String,
    /// The long text; `null` in search results (read the offer for it).
    pub description: Option<String>,
    pub category: &'static str,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub duration: String,
    pub eligibility: Option<Eligibility>,
    pub price: Option<PriceRule>,
    /// VAT rate in basis points (2000 = 20 %); `null` when VAT does not apply (see `vat_note`).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    /// `true` exactly when `price_cents` > 0: the amount known in advance (flat fee, daily rate × days).
    pub billed: bool,
    pub price_cents: i64,
    pub status: &'static str,
    pub version: i32,
    /// Exhibitions: physical copies.
    pub copies: i32,
    pub updated_at: Option<String>,
    /// Search relevance (`null` outside a text search).
    pub rank: Option<f32>,
}

impl From<catalogue::Offer> for Offer {
    fn from(o: catalogue::Offer) -> Self {
        Self {
            category: offer_category(o.category),
            status: offer_status(o.status),
            updated_at: timestamp(o.updated_at.as_ref()),
            rank: (o.rank > 0.0).then_some(o.rank),
            eligibility: o.eligibility.map(Into::into),
            price: o.price_rule.map(Into::into),
            id: o.id,
            code: o.code,
            title: o.title,
            summary: o.summary,
            description: non_empty(o.description),
            themes: o.themes,
            provider_code: o.provider_code,
            duration: o.duration,
            vat_rate_bp: o.vat_rate_bp,
            vat_note: o.vat_note,
            billed: o.billed,
            price_cents: o.price_cents,
            version: o.version,
            copies: o.copies,
        }
    }
}

/// A search page: the offers, the next cursor, the count of all matches and the facets.
#[derive(Debug, Serialize)]
pub struct OfferSearch {
    pub items: Vec<Offer>,
    pub next_cursor: Option<String>,
    pub total: u32,
    /// The query as searched after typo correction, when it was corrected.
    pub corrected_q: Option<String>,
    /// `{category: {value: count}, theme: {...}, provider: {...}, price_kind: {...}}`: counts of the matching
    /// offers per value, each dimension with every other filter applied.
    pub facets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u32>>,
}

impl From<catalogue::SearchOffersResponse> for OfferSearch {
    fn from(r: catalogue::SearchOffersResponse) -> Self {
        Self {
            items: r.offers.into_iter().map(Offer::from).collect(),
            next_cursor: non_empty(r.next_page_token),
            total: r.total,
            corrected_q: non_empty(r.corrected_q),
            facets: r
                .facets
                .into_iter()
                .map(|f| (f.name, f.values.into_iter().map(|v| (v.value, v.count)).collect()))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BusyPeriod {
    pub from: String,
    pub to: String,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CopyCalendar {
    pub copy_id: String,
    pub label: String,
    pub busy: Vec<BusyPeriod>,
}

#[derive(Debug, Serialize)]
pub struct DayAvailability {
    pub date: String,
    pub available_copies: u32,
}

#[derive(Debug, Serialize)]
pub struct Availability {
    pub exhibition_id: String,
    pub from: String,
    pub to: String,
    pub copies: u32,
    pub copy_calendars: Vec<CopyCalendar>,
    pub days: Vec<DayAvailability>,
}

impl From<catalogue::Availability> for Availability {
    fn from(a: catalogue::Availability) -> Self {
        Self {
            exhibition_id: a.exhibition_id,
            from: a.from,
            to: a.to,
            copies: a.copies,
            copy_calendars: a
                .copy_calendars
                .into_iter()
                .map(|c| CopyCalendar {
                    copy_id: c.copy_id,
                    label: c.label,
                    busy: c
                        .busy
                        .into_iter()
                        .map(|b| BusyPeriod { status: booking_status(b.status), from: b.from, to: b.to })
                        .collect(),
                })
                .collect(),
            days: a
                .days
                .into_iter()
                .map(|d| DayAvailability { date: d.date, available_copies: d.available_copies })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Booking {
    pub id: String,
    pub exhibition_id: String,
    pub copy_id: String,
    pub copy_label: String,
    pub member_id: String,
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    pub status: &'static str,
    pub provider_code: String,
    pub updated_at: Option<String>,
}

impl From<catalogue::Booking> for Booking {
    fn from(b: catalogue::Booking) -> Self {
        Self {
            status: booking_status(b.status),
            updated_at: timestamp(b.updated_at.as_ref()),
            request_id: non_empty(b.request_id),
            id: b.id,
            exhibition_id: b.exhibition_id,
            copy_id: b.copy_id,
            copy_label: b.copy_label,
            member_id: b.member_id,
            from: b.from,
            to: b.to,
            provider_code: b.provider_code,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub contact_email: String,
}

impl From<catalogue::Provider> for Provider {
    fn from(p: catalogue::Provider) -> Self {
        Self { kind: provider_kind(p.kind), code: p.code, name: p.name, contact_email: p.contact_email }
    }
}

// ---- requests ----------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct StatusChange {
    pub status: &'static str,
    /// The status left (null for the submission).
    pub from: Option<&'static str>,
    pub reason: Option<String>,
    pub at: Option<String>,
    /// Who: a user (null for routing's events) acting as `actor_role` ("system" for routing's events).
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    /// Who, by name (a person's display name; "connecteur <provider>" for a provider's NATS consumer; null for
    /// the platform's own decisions).
    pub actor_name: Option<String>,
    /// The provider the request is with after the change.
    pub provider_code: Option<String>,
}

impl From<requests::StatusChange> for StatusChange {
    fn from(c: requests::StatusChange) -> Self {
        let from = request_status(c.from);
        Self {
            status: request_status(c.status),
            from: (from != UNSPECIFIED).then_some(from),
            at: timestamp(c.at.as_ref()),
            reason: non_empty(c.reason),
            actor_user_id: non_empty(c.actor_user_id),
            actor_role: non_empty(c.actor_role),
            actor_name: non_empty(c.actor_name),
            provider_code: non_empty(c.provider_code),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LoanDates {
    pub start_date: String,
    pub end_date: String,
}

#[derive(Debug, Serialize)]
pub struct Site {
    pub address: Option<String>,
    pub commune_insee: String,
}

#[derive(Debug, Serialize)]
pub struct Feedback {
    pub rating: u32,
    pub comment: Option<String>,
    pub given_by: String,
    pub given_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Request {
    pub id: String,
    pub member_id: String,
    /// Null for an open orientation request until the coordinator attaches an offer.
    pub offer_id: Option<String>,
    pub offer_version: Option<i32>,
    pub offer_category: Option<String>,
    /// `offer` or `orientation`.
    pub kind: String,
    pub subject: String,
    pub description: String,
    pub status: &'static str,
    /// The provider it was referred to, once routed.
    pub provider_code: Option<String>,
    pub dates: Option<LoanDates>,
    pub site: Option<Site>,
    pub feedback: Option<Feedback>,
    pub submitted_at: Option<String>,
    pub updated_at: Option<String>,
    pub first_answered_at: Option<String>,
    pub completed_at: Option<String>,
    /// Oldest first.
    pub history: Vec<StatusChange>,
}

impl From<requests::Request> for Request {
    fn from(r: requests::Request) -> Self {
        Self {
            status: request_status(r.status),
            submitted_at: timestamp(r.submitted_at.as_ref()),
            updated_at: timestamp(r.updated_at.as_ref()),
            first_answered_at: timestamp(r.first_answered_at.as_ref()),
            completed_at: timestamp(r.completed_at.as_ref()),
            history: r.history.into_iter().map(StatusChange::from).collect(),
            provider_code: non_empty(r.provider_code),
            offer_id: non_empty(r.offer_id),
            offer_version: (r.offer_version > 0).then_some(r.offer_version),
            offer_category: non_empty(r.offer_category),
            kind: r.kind,
            dates: r.dates.map(|d| LoanDates { start_date: d.start_date, end_date: d.end_date }),
            site: r.site.map(|s| Site { address: non_empty(s.address), commune_insee: s.commune_insee }),
            feedback: r.feedback.map(|f| Feedback {
                rating: f.rating,
                comment: non_empty(f.comment),
                given_by: f.given_by,
                given_at: timestamp(f.given_at.as_ref()),
                updated_at: timestamp(f.updated_at.as_ref()),
            }),
            id: r.id,
            member_id: r.member_id,
            subject: r.subject,
            description: r.description,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RequestSummary {
    /// Every status, in lifecycle order.
    pub counts: serde_json::Map<String, serde_json::Value>,
    pub total: u64,
}

impl From<requests::RequestSummary> for RequestSummary {
    fn from(s: requests::RequestSummary) -> Self {
        let counts = s.counts.into_iter().map(|c| (request_status(c.status).to_owned(), c.count.into())).collect();
        Self { counts, total: s.total }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyCount {
    pub key: Option<String>,
    pub count: u64,
}

fn key_counts(rows: Vec<requests::KeyCount>) -> Vec<KeyCount> {
    rows.into_iter().map(|k| KeyCount { key: non_empty(k.key), count: k.count }).collect()
}

#[derive(Debug, Serialize)]
pub struct DurationStats {
    pub count: u64,
    pub median_seconds: Option<f64>,
}

impl From<Option<requests::DurationStats>> for DurationStats {
    fn from(d: Option<requests::DurationStats>) -> Self {
        let d = d.unwrap_or_default();
        Self { count: d.count, median_seconds: (d.count > 0).then_some(d.median_seconds) }
    }
}

#[derive(Debug, Serialize)]
pub struct Satisfaction {
    pub count: u64,
    pub mean: Option<f64>,
    /// Counts of ratings 1 to 5.
    pub distribution: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct RequestStatistics {
    pub from: Option<String>,
    pub to: Option<String>,
    pub total: u64,
    pub by_status: Vec<KeyCount>,
    pub by_category: Vec<KeyCount>,
    pub by_provider: Vec<KeyCount>,
    pub by_epci: Vec<KeyCount>,
    pub by_arrondissement: Vec<KeyCount>,
    pub time_to_first_answer: DurationStats,
    pub time_to_completion: DurationStats,
    pub satisfaction: Satisfaction,
}

impl From<requests::RequestStatistics> for RequestStatistics {
    fn from(s: requests::RequestStatistics) -> Self {
        let satisfaction = s.satisfaction.unwrap_or_default();
        Self {
            from: timestamp(s.from.as_ref()),
            to: timestamp(s.to.as_ref()),
            total: s.total,
            by_status: key_counts(s.by_status),
            by_category: key_counts(s.by_category),
            by_provider: key_counts(s.by_provider),
            by_epci: key_counts(s.by_epci),
            by_arrondissement: key_counts(s.by_arrondissement),
            time_to_first_answer: s.time_to_first_answer.into(),
            time_to_completion: s.time_to_completion.into(),
            satisfaction: Satisfaction {
                count: satisfaction.count,
                mean: (satisfaction.count > 0).then_some(satisfaction.mean),
                distribution: satisfaction.distribution,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TriageItem {
    pub request_id: String,
    pub member_id: String,
    pub subject: String,
    pub description: String,
    /// Null for an open orientation request.
    pub offer_id: Option<String>,
    /// Why it is here (null: an open orientation request).
    pub reason: Option<String>,
    pub received_at: Option<String>,
}

impl From<routing::TriageItem> for TriageItem {
    fn from(t: routing::TriageItem) -> Self {
        Self {
            received_at: timestamp(t.received_at.as_ref()),
            offer_id: non_empty(t.offer_id),
            reason: non_empty(t.reason),
            request_id: t.request_id,
            member_id: t.member_id,
            subject: t.subject,
            description: t.description,
        }
    }
}

// ---- routing -----------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct Referral {
    pub id: String,
    pub request_id: String,
    pub offer_id: String,
    pub member_id: String,
    pub provider_code: String,
    pub status: &'static str,
    pub reason: Option<String>,
    pub assignment: Option<String>,
    pub offered_at: Option<String>,
    pub decided_at: Option<String>,
    /// 1 for the first referral of a request, then one more per re-routing or reassignment.
    pub attempt: i32,
    /// The routing rule (and rule set version) that chose the provider, if a rule did.
    pub rule_id: Option<String>,
    pub rule_version: Option<i32>,
    pub respond_by: Option<String>,
    pub remind_at: Option<String>,
    pub escalated_at: Option<String>,
    pub expires_at: Option<String>,
    pub completed_at: Option<String>,
    pub progress: Option<String>,
    /// Whether the provider may work on it: `not_required`, `awaiting_member` (progress and completion answer
    /// 409 `quote-not-accepted`), `agreed`.
    pub agreement: &'static str,
    /// Who accepted, declined or withdrew it (null for routing itself): display name and role.
    pub decided_by_name: Option<String>,
    pub decided_by_role: Option<String>,
}

impl From<routing::Referral> for Referral {
    fn from(r: routing::Referral) -> Self {
        Self {
            status: referral_status(r.status),
            offered_at: timestamp(r.offered_at.as_ref()),
            decided_at: timestamp(r.decided_at.as_ref()),
            respond_by: timestamp(r.respond_by.as_ref()),
            remind_at: timestamp(r.remind_at.as_ref()),
            escalated_at: timestamp(r.escalated_at.as_ref()),
            expires_at: timestamp(r.expires_at.as_ref()),
            completed_at: timestamp(r.completed_at.as_ref()),
            reason: non_empty(r.reason),
            assignment: non_empty(r.assignment),
            rule_id: non_empty(r.rule_id),
            rule_version: (r.rule_version > 0).then_some(r.rule_version),
            progress: non_empty(r.progress),
            agreement: quote_agreement(r.agreement),
            decided_by_name: non_empty(r.decided_by_name),
            decided_by_role: non_empty(r.decided_by_role),
            attempt: r.attempt,
            id: r.id,
            request_id: r.request_id,
            offer_id: r.offer_id,
            member_id: r.member_id,
            provider_code: r.provider_code,
        }
    }
}

/// A condition as JSON (null: always).
fn condition(json: &str) -> serde_json::Value {
    if json.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Serialize)]
pub struct RoutingRule {
    pub id: String,
    pub position: u32,
    pub name: String,
    /// `null`: always matches.
    pub condition: serde_json::Value,
    pub provider_code: String,
}

impl From<routing::RoutingRule> for RoutingRule {
    fn from(r: routing::RoutingRule) -> Self {
        Self {
            condition: condition(&r.condition_json),
            id: r.id,
            position: r.position,
            name: r.name,
            provider_code: r.provider_code,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RuleSet {
    pub version: i32,
    pub rules: Vec<RoutingRule>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
}

impl From<routing::RuleSet> for RuleSet {
    fn from(s: routing::RuleSet) -> Self {
        Self {
            version: s.version,
            rules: s.rules.into_iter().map(RoutingRule::from).collect(),
            created_at: timestamp(s.created_at.as_ref()),
            created_by: non_empty(s.created_by),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RuleTrace {
    pub rule_id: String,
    pub position: u32,
    pub name: String,
    pub provider_code: String,
    pub matched: bool,
    pub reasons: Vec<String>,
    pub skipped: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RoutingExplanation {
    pub request_id: String,
    pub member_id: String,
    pub offer_id: String,
    pub rule_version: i32,
    pub facts: Vec<String>,
    pub rules: Vec<RuleTrace>,
    /// `rule`, `offer_default`, `triage` or `manual`.
    pub outcome: String,
    pub provider_code: Option<String>,
    pub chosen_rule_id: Option<String>,
    pub summary: String,
    pub referrals: Vec<Referral>,
}

impl From<routing::RoutingExplanation> for RoutingExplanation {
    fn from(e: routing::RoutingExplanation) -> Self {
        Self {
            request_id: e.request_id,
            member_id: e.member_id,
            offer_id: e.offer_id,
            rule_version: e.rule_version,
            facts: e.facts,
            rules: e
                .rules
                .into_iter()
                .map(|t| RuleTrace {
                    rule_id: t.rule_id,
                    position: t.position,
                    name: t.name,
                    provider_code: t.provider_code,
                    matched: t.matched,
                    reasons: t.reasons,
                    skipped: non_empty(t.skipped),
                })
                .collect(),
            outcome: e.outcome,
            provider_code: non_empty(e.provider_code),
            chosen_rule_id: non_empty(e.chosen_rule_id),
            summary: e.summary,
            referrals: e.referrals.into_iter().map(Referral::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BulkReassignResult {
    pub referral_id: String,
    pub referral: Option<Referral>,
    pub error: Option<String>,
}

impl From<routing::BulkReassignResult> for BulkReassignResult {
    fn from(r: routing::BulkReassignResult) -> Self {
        Self { referral_id: r.referral_id, referral: r.referral.map(Referral::from), error: non_empty(r.error) }
    }
}

// ---- billing -----------------------------------------------------------------------------------------------

/// A seller or buyer of a billing document, as it stood when the document was issued.
#[derive(Debug, Default, Serialize)]
pub struct Party {
    pub name: String,
    pub trading_name: String,
    pub siren: String,
    pub siret: String,
    pub vat_id: String,
    pub address_line: String,
    pub postcode: String,
    pub city: String,
    pub country_code: String,
}

impl From<Option<billing::Party>> for Party {
    fn from(p: Option<billing::Party>) -> Self {
        let p = p.unwrap_or_default();
        Self {
            name: p.name,
            trading_name: p.trading_name,
            siren: p.siren,
            siret: p.siret,
            vat_id: p.vat_id,
            address_line: p.address_line,
            postcode: p.postcode,
            city: p.city,
            country_code: p.country_code,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Quote {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: String,
    pub request_id: String,
    pub referral_id: String,
    pub offer_id: String,
    pub label: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: &'static str,
    pub issued_at: Option<String>,
    /// An offer priced on quote whose amount the provider has still to state (amount_cents is then 0).
    pub amount_to_be_stated: bool,
    /// VAT rate in basis points (2000 = 20 %); null when VAT does not apply (vat_note says why).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: Option<String>,
    /// A proposed quote expires at this instant unless a member admin accepts or refuses it.
    pub expires_at: Option<String>,
    /// When the status left `proposed`, and who decided (null for the platform: a voided or expired quote).
    pub decided_at: Option<String>,
    pub decided_by_name: Option<String>,
    /// Accepted: who signs for the member, and the member's purchase order number (numéro d'engagement).
    pub signatory_name: Option<String>,
    pub purchase_order_number: Option<String>,
    /// Refused: the member's reason; voided or expired: why.
    pub decision_reason: Option<String>,
    pub seller: Party,
    pub buyer: Party,
}

impl From<billing::Quote> for Quote {
    fn from(q: billing::Quote) -> Self {
        Self {
            seller: q.seller.into(),
            buyer: q.buyer.into(),
            status: quote_status(q.status),
            issued_at: timestamp(q.issued_at.as_ref()),
            amount_to_be_stated: q.amount_to_be_stated,
            vat_rate_bp: q.vat_rate_bp,
            vat_note: non_empty(q.vat_note),
            expires_at: timestamp(q.expires_at.as_ref()),
            decided_at: timestamp(q.decided_at.as_ref()),
            decided_by_name: non_empty(q.decided_by_name),
            signatory_name: non_empty(q.signatory_name),
            purchase_order_number: non_empty(q.purchase_order_number),
            decision_reason: non_empty(q.decision_reason),
            id: q.id,
            number: q.number,
            issuer_code: q.issuer_code,
            year: q.year,
            sequence: q.sequence,
            member_id: q.member_id,
            request_id: q.request_id,
            referral_id: q.referral_id,
            offer_id: q.offer_id,
            label: q.label,
            amount_cents: q.amount_cents,
            currency: q.currency,
        }
    }
}

fn invoice_status(status: i32) -> &'static str {
    match billing::InvoiceStatus::try_from(status) {
        Ok(billing::InvoiceStatus::Issued) => "issued",
        Ok(billing::InvoiceStatus::Sent) => "sent",
        Ok(billing::InvoiceStatus::Paid) => "paid",
        Ok(billing::InvoiceStatus::Cancelled) => "cancelled",
        _ => "unspecified",
    }
}

#[derive(Debug, Serialize)]
pub struct InvoiceLine {
    pub label: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub net_cents: i64,
}

impl From<billing::InvoiceLine> for InvoiceLine {
    fn from(l: billing::InvoiceLine) -> Self {
        Self { label: l.label, quantity: l.quantity, unit_price_cents: l.unit_price_cents, net_cents: l.net_cents }
    }
}

#[derive(Debug, Serialize)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: String,
    pub buyer_siren: String,
    pub request_id: String,
    pub referral_id: String,
    pub offer_id: String,
    pub lines: Vec<InvoiceLine>,
    pub total_net_cents: i64,
    pub total_vat_cents: i64,
    pub total_gross_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub currency: String,
    pub status: &'static str,
    pub issued_at: Option<String>,
    pub due_date: String,
    pub credit_note_id: Option<String>,
    pub seller: Party,
    pub buyer: Party,
    pub sent_on: Option<String>,
    pub paid_on: Option<String>,
    pub payment_reference: Option<String>,
    /// The accepted quote the invoice bills (its number is the EN 16931 project reference, BT-11).
    pub quote_id: Option<String>,
    pub quote_number: Option<String>,
    /// The member's purchase order number from the quote's acceptance (BT-13); null when none was given.
    pub purchase_order_number: Option<String>,
}

impl From<billing::Invoice> for Invoice {
    fn from(i: billing::Invoice) -> Self {
        Self {
            quote_id: non_empty(i.quote_id),
            quote_number: non_empty(i.quote_number),
            purchase_order_number: non_empty(i.purchase_order_number),
            sent_on: Some(i.sent_on).filter(|d| !d.is_empty()),
            paid_on: Some(i.paid_on).filter(|d| !d.is_empty()),
            payment_reference: Some(i.payment_reference).filter(|r| !r.is_empty()),
            seller: i.seller.into(),
            buyer: i.buyer.into(),
            status: invoice_status(i.status),
            issued_at: timestamp(i.issued_at.as_ref()),
            lines: i.lines.into_iter().map(InvoiceLine::from).collect(),
            credit_note_id: Some(i.credit_note_id).filter(|c| !c.is_empty()),
            id: i.id,
            number: i.number,
            issuer_code: i.issuer_code,
            year: i.year,
            sequence: i.sequence,
            member_id: i.member_id,
            buyer_siren: i.buyer_siren,
            request_id: i.request_id,
            referral_id: i.referral_id,
            offer_id: i.offer_id,
            total_net_cents: i.total_net_cents,
            total_vat_cents: i.total_vat_cents,
            total_gross_cents: i.total_gross_cents,
            vat_rate_bp: i.vat_rate_bp,
            vat_note: i.vat_note,
            currency: i.currency,
            due_date: i.due_date,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreditNote {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub invoice_id: String,
    pub invoice_number: String,
    pub member_id: String,
    pub buyer_siren: String,
    pub lines: Vec<InvoiceLine>,
    pub total_net_cents: i64,
    pub total_vat_cents: i64,
    pub total_gross_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub currency: String,
    pub reason: String,
    pub issued_at: Option<String>,
    pub seller: Party,
    pub buyer: Party,
}

impl From<billing::CreditNote> for CreditNote {
    fn from(c: billing::CreditNote) -> Self {
        Self {
            seller: c.seller.into(),
            buyer: c.buyer.into(),
            issued_at: timestamp(c.issued_at.as_ref()),
            lines: c.lines.into_iter().map(InvoiceLine::from).collect(),
            id: c.id,
            number: c.number,
            issuer_code: c.issuer_code,
            invoice_id: c.invoice_id,
            invoice_number: c.invoice_number,
            member_id: c.member_id,
            buyer_siren: c.buyer_siren,
            total_net_cents: c.total_net_cents,
            total_vat_cents: c.total_vat_cents,
            total_gross_cents: c.total_gross_cents,
            vat_rate_bp: c.vat_rate_bp,
            vat_note: c.vat_note,
            currency: c.currency,
            reason: c.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn enums_are_lowercase_strings_both_ways() {
        for kind in ["commune", "epci", "syndicat"] {
            let parsed = parse_collectivity_kind(kind).map(|k| collectivity_kind(k.into()));
            assert_eq!(parsed, Some(kind));
        }
        for status in ["pending", "active", "suspended", "withdrawn"] {
            assert_eq!(parse_member_status(status).map(|s| member_status(s.into())), Some(status));
        }
        for category in ["integrated_engineering", "awareness_training", "exhibition_loan"] {
            assert_eq!(parse_offer_category(category).map(|c| offer_category(c.into())), Some(category));
        }
        assert_eq!(parse_collectivity_kind("COMMUNE"), None);
        assert_eq!(parse_member_status("unspecified"), None);
        assert_eq!(parse_offer_category(""), None);
        let statuses: Vec<_> = (1..=6).map(request_status).collect();
        assert_eq!(statuses, ["submitted", "referred", "accepted", "declined", "cancelled", "completed"]);
        let statuses: Vec<_> = (1..=5).map(referral_status).collect();
        assert_eq!(statuses, ["offered", "accepted", "declined", "expired", "withdrawn"]);
        let statuses: Vec<_> = (1..=5).map(quote_status).collect();
        assert_eq!(statuses, ["proposed", "accepted", "refused", "voided", "expired"]);
        assert_eq!(quote_status(0), UNSPECIFIED);
        let agreements: Vec<_> = (0..=3).map(quote_agreement).collect();
        assert_eq!(agreements, ["not_required", "not_required", "awaiting_member", "agreed"]);
        assert_eq!(provider_kind(1), "departmental_service");
        assert_eq!(provider_kind(2), "associated_organisation");
        // Unknown values from a newer service do not break the gateway.
        assert_eq!(member_status(0), UNSPECIFIED);
        assert_eq!(request_status(99), UNSPECIFIED);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_or_null() {
        assert_eq!(timestamp(ts(1_700_000_000, 0).as_ref()).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(timestamp(ts(1_700_000_000, 123_456_000).as_ref()).as_deref(), Some("2023-11-14T22:13:20.123456Z"));
        assert_eq!(timestamp(None), None);
        assert_eq!(timestamp(ts(0, -1).as_ref()), None);
    }

    #[test]
    fn member_json_has_the_documented_shape() {
        let member = Member::from(membership::Member {
            id: "m1".into(),
            siren: "217700014".into(),
            name: "Avon".into(),
            kind: membership::CollectivityKind::Commune.into(),
            status: membership::MemberStatus::Pending.into(),
            contact_name: "A. Maire".into(),
            contact_email: "mairie@example.fr".into(),
            applied_at: ts(1_700_000_000, 0),
            approved_at: None,
            referent_user_id: String::new(),
        });
        assert_eq!(
            serde_json::to_value(member).unwrap_or_default(),
            json!({
                "id": "m1", "siren": "217700014", "name": "Avon", "kind": "commune", "status": "pending",
                "contact_name": "A. Maire", "contact_email": "mairie@example.fr",
                "applied_at": "2023-11-14T22:13:20Z", "approved_at": null, "referent_user_id": null
            })
        );
        let followed = Member::from(membership::Member { referent_user_id: "u1".into(), ..Default::default() });
        assert_eq!(serde_json::to_value(followed).unwrap_or_default()["referent_user_id"], "u1");
    }

    #[test]
    fn roles_are_the_snake_case_names_of_the_tokens() {
        for r in Role::ALL {
            assert_eq!(role(role_to_proto(r).into()), r.as_str());
        }
        assert_eq!(role(0), UNSPECIFIED);
        assert_eq!(role(42), UNSPECIFIED);
    }

    #[test]
    fn identity_json_has_the_documented_shapes() {
        let user = membership::User {
            id: "u1".into(),
            email: "dgs@meaux.fr".into(),
            display_name: "DGS".into(),
            role: membership::Role::MemberAdmin.into(),
            member_id: "m1".into(),
            provider_code: String::new(),
            active: true,
            created_at: ts(1_700_000_000, 0),
        };
        let me = Me::from(membership::Me { user: Some(user.clone()), referent: None });
        assert_eq!(
            serde_json::to_value(me).unwrap_or_default(),
            json!({
                "user": {"id": "u1", "email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin",
                         "member_id": "m1", "provider_code": null, "active": true,
                         "created_at": "2023-11-14T22:13:20Z"},
                "referent": null
            })
        );
        let referent =
            membership::Referent { user_id: "r1".into(), display_name: "R".into(), email: "r@d77.fr".into() };
        let me = Me::from(membership::Me { user: Some(user.clone()), referent: Some(referent) });
        assert_eq!(
            serde_json::to_value(me).unwrap_or_default()["referent"],
            json!({"user_id": "r1", "display_name": "R", "email": "r@d77.fr"})
        );
        let pair = TokenPair::from(membership::TokenPair {
            access_token: "a".into(),
            token_type: "bearer".into(),
            expires_in: 600,
            refresh_token: "r".into(),
            refresh_expires_in: 2_592_000,
        });
        assert_eq!(
            serde_json::to_value(pair).unwrap_or_default(),
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": 600, "refresh_token": "r",
                   "refresh_expires_in": 2_592_000})
        );
        let invitation = Invitation::from(membership::Invitation {
            user: Some(user),
            invitation_token: "i".into(),
            expires_at: ts(1_700_000_000, 0),
        });
        let value = serde_json::to_value(invitation).unwrap_or_default();
        assert_eq!(
            (value["invitation_token"].as_str(), value["expires_at"].as_str()),
            (Some("i"), Some("2023-11-14T22:13:20Z"))
        );
        assert_eq!(value["user"]["role"], "member_admin");
        let event = AuditEvent::from(membership::AuditEvent {
            id: "e1".into(),
            kind: "login.failed".into(),
            actor_user_id: String::new(),
            subject: "dgs@meaux.fr".into(),
            client: "192.0.2.1".into(),
            detail: "wrong password".into(),
            at: ts(1_700_000_000, 0),
        });
        assert_eq!(
            serde_json::to_value(event).unwrap_or_default(),
            json!({"id": "e1", "kind": "login.failed", "actor_user_id": null, "subject": "dgs@meaux.fr",
                   "client": "192.0.2.1", "detail": "wrong password", "at": "2023-11-14T22:13:20Z"})
        );
    }

    #[test]
    fn request_json_has_history_and_nullable_provider() {
        let request = Request::from(requests::Request {
            id: "r1".into(),
            member_id: "m1".into(),
            offer_id: "o1".into(),
            subject: "s".into(),
            description: "d".into(),
            status: requests::RequestStatus::Referred.into(),
            provider_code: String::new(),
            submitted_at: ts(1_700_000_000, 0),
            updated_at: ts(1_700_000_060, 0),
            history: vec![requests::StatusChange {
                status: requests::RequestStatus::Submitted.into(),
                reason: String::new(),
                at: ts(1_700_000_000, 0),
                actor_user_id: "u1".into(),
                actor_role: "member_user".into(),
                ..Default::default()
            }],
            offer_version: 3,
            kind: "offer".into(),
            site: Some(requests::Site { address: String::new(), commune_insee: "77284".into() }),
            ..Default::default()
        });
        let value = serde_json::to_value(request).unwrap_or_default();
        assert_eq!(value["status"], "referred");
        assert_eq!(value["provider_code"], serde_json::Value::Null);
        assert_eq!(value["offer_version"], 3);
        assert_eq!(value["site"], json!({"address": null, "commune_insee": "77284"}));
        assert_eq!(value["feedback"], serde_json::Value::Null);
        assert_eq!(
            value["history"],
            json!([{"status": "submitted", "from": null, "reason": null, "at": "2023-11-14T22:13:20Z",
                    "actor_user_id": "u1", "actor_role": "member_user", "actor_name": null, "provider_code": null}])
        );
    }

    #[test]
    fn summaries_and_statistics_name_every_status_and_null_empty_medians() {
        let summary = RequestSummary::from(requests::RequestSummary {
            counts: vec![
                requests::StatusCount { status: requests::RequestStatus::Submitted.into(), count: 2 },
                requests::StatusCount { status: requests::RequestStatus::InProgress.into(), count: 1 },
            ],
            total: 3,
        });
        assert_eq!(
            serde_json::to_value(summary).unwrap_or_default(),
            json!({"counts": {"submitted": 2, "in_progress": 1}, "total": 3})
        );
        let stats = RequestStatistics::from(requests::RequestStatistics {
            by_epci: vec![requests::KeyCount { key: String::new(), count: 4 }],
            time_to_completion: Some(requests::DurationStats { count: 2, median_seconds: 90.5 }),
            ..Default::default()
        });
        let value = serde_json::to_value(stats).unwrap_or_default();
        assert_eq!(value["by_epci"], json!([{"key": null, "count": 4}]));
        assert_eq!(value["time_to_first_answer"], json!({"count": 0, "median_seconds": null}));
        assert_eq!(value["time_to_completion"], json!({"count": 2, "median_seconds": 90.5}));
        assert_eq!(value["satisfaction"], json!({"count": 0, "mean": null, "distribution": []}));
    }

    #[test]
    fn pages_turn_empty_tokens_into_null() {
        let page: Page<Provider> = Page::new(Vec::<catalogue::Provider>::new(), String::new());
        assert_eq!(serde_json::to_value(page).unwrap_or_default(), json!({"items": [], "next_cursor": null}));
        let page: Page<Quote> =
            Page::new(vec![billing::Quote { status: 1, amount_cents: 120_000, ..Default::default() }], "abc".into());
        let value = serde_json::to_value(page).unwrap_or_default();
        assert_eq!(value["next_cursor"], "abc");
        assert_eq!(value["items"][0]["status"], "proposed");
        assert_eq!(value["items"][0]["amount_cents"], 120_000);
    }

    #[test]
    fn quotes_say_who_decided_and_invoices_which_quote_they_bill() {
        let accepted = Quote::from(billing::Quote {
            id: "q1".into(),
            number: "D-caue77-2026-000001".into(),
            status: billing::QuoteStatus::Accepted.into(),
            amount_cents: 120_000,
            vat_rate_bp: Some(2000),
            expires_at: ts(1_702_592_000, 0),
            decided_at: ts(1_700_000_000, 0),
            decided_by_user_id: "u1".into(),
            decided_by_name: "Marie Dupont".into(),
            signatory_name: "Marie Dupont, maire".into(),
            purchase_order_number: "EJ-2026-0042".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(accepted).unwrap_or_default();
        assert_eq!(value["status"], "accepted");
        assert_eq!(value["decided_at"], "2023-11-14T22:13:20Z");
        assert_eq!(value["expires_at"], "2023-12-14T22:13:20Z");
        assert_eq!(value["decided_by_name"], "Marie Dupont");
        assert_eq!(value["signatory_name"], "Marie Dupont, maire");
        assert_eq!(value["purchase_order_number"], "EJ-2026-0042");
        assert_eq!(value["decision_reason"], serde_json::Value::Null);
        assert_eq!((value["vat_rate_bp"].as_i64(), value["vat_note"].is_null()), (Some(2000), true));
        let refused = Quote::from(billing::Quote {
            status: billing::QuoteStatus::Refused.into(),
            decision_reason: "Budget non voté".into(),
            vat_note: "TVA non applicable, art. 256 B du CGI".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(refused).unwrap_or_default();
        assert_eq!(
            (value["status"].as_str(), value["decision_reason"].as_str()),
            (Some("refused"), Some("Budget non voté"))
        );
        assert_eq!((value["signatory_name"].is_null(), value["purchase_order_number"].is_null()), (true, true));
        assert_eq!(
            (value["vat_rate_bp"].is_null(), value["vat_note"].as_str()),
            (true, Some("TVA non applicable, art. 256 B du CGI"))
        );

        let invoice = Invoice::from(billing::Invoice {
            quote_id: "q1".into(),
            quote_number: "D-caue77-2026-000001".into(),
            purchase_order_number: "EJ-2026-0042".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(invoice).unwrap_or_default();
        assert_eq!(
            (value["quote_id"].as_str(), value["quote_number"].as_str(), value["purchase_order_number"].as_str()),
            (Some("q1"), Some("D-caue77-2026-000001"), Some("EJ-2026-0042"))
        );
        let value = serde_json::to_value(Invoice::from(billing::Invoice::default())).unwrap_or_default();
        assert_eq!(value["purchase_order_number"], serde_json::Value::Null, "no purchase order: null");

        let referral = Referral::from(routing::Referral {
            status: routing::ReferralStatus::Accepted.into(),
            agreement: routing::QuoteAgreement::AwaitingMember.into(),
            decided_by_user_id: "u2".into(),
            decided_by_role: "provider_agent".into(),
            decided_by_name: "Paul Martin".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(referral).unwrap_or_default();
        assert_eq!(value["agreement"], "awaiting_member");
        assert_eq!(
            (value["decided_by_name"].as_str(), value["decided_by_role"].as_str()),
            (Some("Paul Martin"), Some("provider_agent"))
        );
        let value = serde_json::to_value(Referral::from(routing::Referral::default())).unwrap_or_default();
        assert_eq!((value["agreement"].as_str(), value["decided_by_name"].is_null()), (Some("not_required"), true));

        let change = StatusChange::from(requests::StatusChange {
            status: requests::RequestStatus::Cancelled.into(),
            actor_role: "member_admin".into(),
            actor_name: "Marie Dupont".into(),
            ..Default::default()
        });
        assert_eq!(serde_json::to_value(change).unwrap_or_default()["actor_name"], "Marie Dupont");
    }
}
