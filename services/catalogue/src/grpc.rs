//! gRPC transport: maps requests to domain decisions and store calls, and rows to protobuf.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use id77_platform::auth::{Authenticator, Caller, Denied};
use id77_platform::error::FieldViolation;
use id77_platform::streams::is_valid_subject_token;
use id77_platform::{ErrorCode, ServiceError, page, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_server::CatalogueService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::booking::{self, BookingStatus};
use crate::domain::{
    self, Category, Edit, EligibilityInput, LifecycleError, MemberKind, OfferContent, OfferInput, OfferStatus,
    PriceRule, Provider, ProviderInput, ProviderKind,
};
use crate::search::{self, Filters, Hit};
use crate::store::{self, BookingRow, HoldError, OfferRow, ProviderRow, SearchRow};
use crate::{access, events};

/// Most copies tried for one hold (an exhibition has at most `domain::MAX_COPIES`).
const MAX_HOLD_ATTEMPTS: usize = 3 * domain::MAX_COPIES as usize;

/// How long a search's match set is reused. Writes through this replica invalidate at once; another
/// replica's writes are seen after at most this long.
pub const SEARCH_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most distinct queries kept (the cache is cleared when full).
const SEARCH_CACHE_ENTRIES: usize = 1024;

/// When a result was computed, under which catalogue generation, and the result.
type Entry<V> = (Instant, u64, Arc<V>);

/// Recent results by key.
struct Recent<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: std::hash::Hash + Eq, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq, V> Recent<K, V> {
    fn get(&self, key: &K, generation: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        let (at, entry_generation, value) = entries.get(key)?;
        (*entry_generation == generation && at.elapsed() < SEARCH_CACHE_TTL).then(|| value.clone())
    }

    fn put(&self, key: K, generation: u64, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SEARCH_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), generation, value));
        }
    }
}

/// Recent searches, so that a popular one goes neither to PostgreSQL nor through filtering and facets on every
/// call: match sets by words (shared by every filter and page), and whole answers by request (not for
/// "eligible", which depends on the caller).
#[derive(Default)]
struct SearchCache {
    /// Bumped after each committed write that search can see; entries of an older generation are stale.
    generation: AtomicU64,
    matches: Recent<Vec<String>, Vec<SearchRow>>,
    answers: Recent<Vec<u8>, pb::SearchOffersResponse>,
}

impl SearchCache {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// After a committed write that search can see.
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct CatalogueApi {
    pool: PgPool,
    /// Verifies a caller's access token when there is one.
    auth: Authenticator,
    cache: SearchCache,
}

impl CatalogueApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth, cache: SearchCache::default() }
    }

    /// The published offers matching `words`, from the cache or PostgreSQL.
    async fn matches(&self, words: Vec<String>) -> Result<Arc<Vec<SearchRow>>, ServiceError> {
        // Read before the query: a result read before a write is never kept under the generation after it.
        let generation = self.cache.generation();
        if let Some(rows) = self.cache.matches.get(&words, generation) {
            return Ok(rows);
        }
        let rows = Arc::new(store::search(&self.pool, &words).await?);
        self.cache.matches.put(words, generation, rows.clone());
        Ok(rows)
    }

    /// A search answer, reused for the same public request within [`SEARCH_CACHE_TTL`].
    async fn search_cached(
        &self,
        caller: Option<&Caller>,
        req: pb::SearchOffersRequest,
    ) -> Result<pb::SearchOffersResponse, ServiceError> {
        if req.eligible_only {
            return self.search(caller, req).await;
        }
        let generation = self.cache.generation();
        let key = id77_proto::prost::Message::encode_to_vec(&req);
        if let Some(answer) = self.cache.answers.get(&key, generation) {
            return Ok(answer.as_ref().clone());
        }
        let answer = self.search(caller, req).await?;
        self.cache.answers.put(key, generation, Arc::new(answer.clone()));
        Ok(answer)
    }

    /// Reads are public: anonymous callers are welcome, but a token that is sent must verify
    /// (UNAUTHENTICATED otherwise), like everywhere else.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Option<Caller>, ServiceError> {
        self.auth.optional_caller(request).await
    }
}

// ---- mapping ------------------------------------------------------------------------------------------------

pub fn category_to_proto(category: &str) -> pb::OfferCategory {
    match Category::parse(category) {
        Some(Category::IntegratedEngineering) => pb::OfferCategory::IntegratedEngineering,
        Some(Category::AwarenessTraining) => pb::OfferCategory::AwarenessTraining,
        Some(Category::ExhibitionLoan) => pb::OfferCategory::ExhibitionLoan,
        None => pb::OfferCategory::Unspecified,
    }
}

fn category_from_proto(category: i32) -> Result<Option<Category>, ServiceError> {
    match pb::OfferCategory::try_from(category) {
        Ok(pb::OfferCategory::Unspecified) => Ok(None),
        Ok(pb::OfferCategory::IntegratedEngineering) => Ok(Some(Category::IntegratedEngineering)),
        Ok(pb::OfferCategory::AwarenessTraining) => Ok(Some(Category::AwarenessTraining)),
        Ok(pb::OfferCategory::ExhibitionLoan) => Ok(Some(Category::ExhibitionLoan)),
        Err(_) => Err(ServiceError::invalid("category", "is not a known category")),
    }
}

fn kind_to_proto(kind: Option<ProviderKind>) -> pb::ProviderKind {
    match kind {
        Some(ProviderKind::DepartmentalService) => pb::ProviderKind::DepartmentalService,
        Some(ProviderKind::AssociatedOrganisation) => pb::ProviderKind::AssociatedOrganisation,
        None => pb::ProviderKind::Unspecified,
    }
}

fn status_to_proto(status: OfferStatus) -> pb::OfferStatus {
    match status {
        OfferStatus::Draft => pb::OfferStatus::Draft,
        OfferStatus::Published => pb::OfferStatus::Published,
        OfferStatus::Archived => pb::OfferStatus::Archived,
    }
}

fn status_from_proto(status: i32) -> Result<OfferStatus, ServiceError> {
    match pb::OfferStatus::try_from(status) {
        Ok(pb::OfferStatus::Draft) => Ok(OfferStatus::Draft),
        Ok(pb::OfferStatus::Published) => Ok(OfferStatus::Published),
        Ok(pb::OfferStatus::Archived) => Ok(OfferStatus::Archived),
        _ => Err(ServiceError::invalid("statuses", "must be draft, published or archived")),
    }
}

pub fn price_kind_to_proto(kind: &str) -> pb::PriceKind {
    match kind {
        "free" => pb::PriceKind::Free,
        "flat" => pb::PriceKind::Flat,
        "daily_rate" => pb::PriceKind::DailyRate,
        "per_inhabitant" => pb::PriceKind::PerInhabitant,
        "on_quote" => pb::PriceKind::OnQuote,
        _ => pb::PriceKind::Unspecified,
    }
}

fn price_kind_from_proto(kind: i32) -> Result<Option<&'static str>, ServiceError> {
    match pb::PriceKind::try_from(kind) {
        Ok(pb::PriceKind::Unspecified) => Ok(None),
        Ok(pb::PriceKind::Free) => Ok(Some("free")),
        Ok(pb::PriceKind::Flat) => Ok(Some("flat")),
        Ok(pb::PriceKind::DailyRate) => Ok(Some("daily_rate")),
        Ok(pb::PriceKind::PerInhabitant) => Ok(Some("per_inhabitant")),
        Ok(pb::PriceKind::OnQuote) => Ok(Some("on_quote")),
        Err(_) => Err(ServiceError::invalid("price_kind", "is not a known price kind")),
    }
}

fn member_kind_to_proto(kind: MemberKind) -> pb::MemberKind {
    match kind {
        MemberKind::Commune => pb::MemberKind::Commune,
        MemberKind::Epci => pb::MemberKind::Epci,
        MemberKind::Syndicat => pb::MemberKind::Syndicat,
    }
}

fn price_to_proto(price: &PriceRule) -> pb::PriceRule {
    let kind = price_kind_to_proto(price.kind()).into();
    match *price {
        PriceRule::Free | PriceRule::OnQuote => pb::PriceRule { kind, ..Default::default() },
        PriceRule::Flat { amount_cents } => pb::PriceRule { kind, amount_cents, ..Default::default() },
        PriceRule::DailyRate { amount_cents, days } => pb::PriceRule { kind, amount_cents, days, ..Default::default() },
        PriceRule::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
            pb::PriceRule { kind, amount_cents, floor_cents, cap_cents: cap_cents.unwrap_or(0), days: 0 }
        }
    }
}

/// An offer's protobuf from its content and state (current row or a past version's snapshot).
pub fn offer_proto(
    id: Uuid,
    version: i32,
    status: OfferStatus,
    content: &OfferContent,
    updated_at: DateTime<Utc>,
) -> pb::Offer {
    let (billed, price_cents) = content.price.legacy();
    let e = &content.eligibility;
    pb::Offer {
        id: id.to_string(),
        code: content.code.clone(),
        title: content.title.clone(),
        summary: content.summary.clone(),
        category: category_to_proto(content.category.as_str()).into(),
        themes: content.themes.clone(),
        provider_code: content.provider_code.clone(),
        billed,
        price_cents,
        version,
        description: content.description.clone(),
        duration: content.duration.clone(),
        eligibility: Some(pb::Eligibility {
            member_kinds: e.member_kinds.iter().map(|k| member_kind_to_proto(*k).into()).collect(),
            min_population: e.min_population.unwrap_or(0),
            max_population: e.max_population.unwrap_or(0),
            epci_sirens: e.epci_sirens.clone(),
            arrondissements: e.arrondissements.clone(),
        }),
        price_rule: Some(price_to_proto(&content.price)),
        vat_rate_bp: content.vat_rate_bp,
        vat_note: content.vat_note.clone(),
        status: status_to_proto(status).into(),
        copies: content.copies,
        updated_at: Some(time::to_proto(updated_at)),
        rank: 0.0,
    }
}

/// An offer row as protobuf; `INTERNAL` if the row holds values the constraints forbid.
pub fn offer_to_proto(row: &OfferRow) -> Result<pb::Offer, ServiceError> {
    let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
    Ok(offer_proto(row.id, row.version, stored.status, &stored.content, row.updated_at))
}

pub fn provider_to_proto(p: &Provider) -> pb::Provider {
    pb::Provider {
        code: p.code.clone(),
        name: p.name.clone(),
        kind: kind_to_proto(Some(p.kind)).into(),
        contact_email: p.contact_email.clone(),
    }
}

fn provider_row_to_proto(p: ProviderRow) -> pb::Provider {
    pb::Provider {
        kind: kind_to_proto(ProviderKind::parse(&p.kind)).into(),
        code: p.code,
        name: p.name,
        contact_email: p.contact_email,
    }
}

fn booking_status_to_proto(status: &str) -> pb::BookingStatus {
    match BookingStatus::parse(status) {
        Some(BookingStatus::Held) => pb::BookingStatus::Held,
        Some(BookingStatus::Confirmed) => pb::BookingStatus::Confirmed,
        Some(BookingStatus::Released) => pb::BookingStatus::Released,
        None => pb::BookingStatus::Unspecified,
    }
}

pub fn booking_to_proto(b: &BookingRow) -> pb::Booking {
    pb::Booking {
        id: b.id.to_string(),
        exhibition_id: b.offer_id.to_string(),
        copy_id: b.copy_id.to_string(),
        copy_label: b.copy_label.clone(),
        member_id: b.member_id.to_string(),
        request_id: b.request_id.map(|r| r.to_string()).unwrap_or_default(),
        from: b.start_date.to_string(),
        to: b.end_date.to_string(),
        status: booking_status_to_proto(&b.status).into(),
        provider_code: b.provider_code.clone(),
        updated_at: Some(time::to_proto(b.updated_at)),
    }
}

/// The operator's offer input, as the domain validates it.
fn offer_input(input: pb::OfferInput) -> Result<OfferInput, ServiceError> {
    let category = match category_from_proto(input.category)? {
        Some(c) => c.as_str().to_owned(),
        None => return Err(ServiceError::invalid("offer.category", "is required")),
    };
    let rule = input.price_rule.unwrap_or_default();
    let price = match pb::PriceKind::try_from(rule.kind) {
        Ok(pb::PriceKind::Free) => PriceRule::Free,
        Ok(pb::PriceKind::Flat) => PriceRule::Flat { amount_cents: rule.amount_cents },
        Ok(pb::PriceKind::DailyRate) => PriceRule::DailyRate { amount_cents: rule.amount_cents, days: rule.days },
        Ok(pb::PriceKind::PerInhabitant) => PriceRule::PerInhabitant {
            amount_cents: rule.amount_cents,
            floor_cents: rule.floor_cents,
            cap_cents: (rule.cap_cents != 0).then_some(rule.cap_cents),
        },
        Ok(pb::PriceKind::OnQuote) => PriceRule::OnQuote,
        _ => return Err(ServiceError::invalid("offer.price_rule.kind", "is required")),
    };
    let e = input.eligibility.unwrap_or_default();
    let mut kinds = Vec::with_capacity(e.member_kinds.len());
    for k in e.member_kinds {
        kinds.push(match pb::MemberKind::try_from(k) {
            Ok(pb::MemberKind::Commune) => "commune".to_owned(),
            Ok(pb::MemberKind::Epci) => "epci".to_owned(),
            Ok(pb::MemberKind::Syndicat) => "syndicat".to_owned(),
            _ => format!("unknown ({k})"),
        });
    }
    Ok(OfferInput {
        code: input.code,
        title: input.title,
        summary: input.summary,
        description: input.description,
        category,
        themes: input.themes,
        provider_code: input.provider_code,
        duration: input.duration,
        eligibility: EligibilityInput {
            member_kinds: kinds,
            min_population: (e.min_population != 0).then_some(e.min_population),
            max_population: (e.max_population != 0).then_some(e.max_population),
            epci_sirens: e.epci_sirens,
            arrondissements: e.arrondissements,
        },
        price,
        vat_rate_bp: input.vat_rate_bp,
        vat_note: input.vat_note,
        copies: input.copies,
    })
}

fn prefixed(prefix: &str, violations: Vec<FieldViolation>) -> ServiceError {
    ServiceError::invalid_fields(
        violations
            .into_iter()
            .map(|v| FieldViolation { field: format!("{prefix}{}", v.field), description: v.description })
            .collect(),
    )
}

fn offer_not_found(key: &str) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, "OFFER_NOT_FOUND", format!("offer {key} not found"))
}

fn lifecycle_error(error: LifecycleError) -> ServiceError {
    match error {
        LifecycleError::InvalidTransition { from, action } => ServiceError::new(
            ErrorCode::FailedPrecondition,
            "INVALID_TRANSITION",
            format!("cannot {action} an offer that is {}", from.as_str()),
        ),
        LifecycleError::VersionConflict { current, expected } => ServiceError::new(
            ErrorCode::FailedPrecondition,
            "VERSION_CONFLICT",
            format!("the offer is at version {current}, not {expected}: reload it and edit again"),
        ),
        LifecycleError::Immutable(what) => ServiceError::invalid(
            &format!("offer.{}", what.split(' ').next().unwrap_or(what)),
            &format!("{what} cannot change"),
        ),
    }
}

fn denied(d: Denied, what: &str, id: &str) -> ServiceError {
    d.into_error(what, id)
}

/// An offer key: a UUID, or a code.
fn offer_key(field: &str, raw: &str) -> Result<(Option<Uuid>, String), ServiceError> {
    let key = raw.trim();
    if let Ok(id) = Uuid::parse_str(key) {
        Ok((Some(id), String::new()))
    } else if is_valid_subject_token(key) {
        Ok((None, key.to_owned()))
    } else {
        Err(ServiceError::invalid(field, "must be an offer id (UUID) or an offer code"))
    }
}

fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    match raw.trim() {
        "" => Ok(None),
        raw => Uuid::parse_str(raw).map(Some).map_err(|_| ServiceError::invalid(field, "must be a UUID")),
    }
}

// ---- reads --------------------------------------------------------------------------------------------------

impl CatalogueApi {
    async fn offers(
        &self,
        caller: Option<&Caller>,
        req: pb::ListOffersRequest,
    ) -> Result<pb::ListOffersResponse, ServiceError> {
        let category = category_from_proto(req.category)?;
        let provider_code = req.provider_code.trim();
        let provider_code = if provider_code.is_empty() {
            None
        } else if is_valid_subject_token(provider_code) {
            Some(provider_code)
        } else {
            return Err(ServiceError::invalid("provider_code", "must be lowercase ASCII letters, digits or dashes"));
        };
        let mut statuses = Vec::new();
        for s in &req.statuses {
            statuses.push(status_from_proto(*s)?.as_str());
        }
        if statuses.is_empty() {
            statuses.push(OfferStatus::Published.as_str());
        } else if statuses.iter().any(|s| *s != OfferStatus::Published.as_str()) {
            access::manage_catalogue(caller).map_err(|d| denied(d, "offers", ""))?;
        }
        let after: Option<String> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows =
            store::list_offers(&self.pool, category.map(Category::as_str), provider_code, &statuses, after, limit + 1)
                .await?;
        let (rows, next) = page::split(rows, limit, |o| page::encode(&o.code));
        let offers = rows.iter().map(offer_to_proto).collect::<Result<Vec<_>, _>>()?;
        Ok(pb::ListOffersResponse { offers, next_page_token: next })
    }

    async fn offer(&self, caller: Option<&Caller>, req: pb::GetOfferRequest) -> Result<pb::Offer, ServiceError> {
        let (id, code) = offer_key("id", &req.id)?;
        let key = req.id.trim();
        let row = match id {
            Some(id) => store::offer_by_id(&self.pool, id).await?,
            None => store::offer_by_code(&self.pool, &code).await?,
        };
        let row = row.ok_or_else(|| offer_not_found(key))?;
        let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        // Drafts are the operator's; ids of drafts cannot be probed.
        if stored.status == OfferStatus::Draft && access::manage_catalogue(caller).is_err() {
            return Err(offer_not_found(key));
        }
        if req.version < 0 {
            return Err(ServiceError::invalid("version", "must be positive"));
        }
        if req.version == 0 || req.version == row.version {
            return offer_to_proto(&row);
        }
        let (content, at) = store::offer_version(&self.pool, row.id, req.version).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NotFound,
                "OFFER_VERSION_NOT_FOUND",
                format!("offer {key} has no version {}", req.version),
            )
        })?;
        // A past version is shown as it was published; it is no longer the current one.
        Ok(offer_proto(row.id, req.version, OfferStatus::Archived, &content, at))
    }

    async fn providers(&self) -> Result<pb::ListProvidersResponse, ServiceError> {
        let rows = store::list_providers(&self.pool).await?;
        Ok(pb::ListProvidersResponse { providers: rows.into_iter().map(provider_row_to_proto).collect() })
    }

    async fn search(
        &self,
        caller: Option<&Caller>,
        req: pb::SearchOffersRequest,
    ) -> Result<pb::SearchOffersResponse, ServiceError> {
        let mut violations = Vec::new();
        if req.q.chars().count() > search::MAX_QUERY_CHARS {
            violations.push(FieldViolation {
                field: "q".into(),
                description: format!("must be at most {} characters", search::MAX_QUERY_CHARS),
            });
        }
        let theme = req.theme.trim().to_lowercase();
        if theme.chars().count() > domain::MAX_THEME_CHARS {
            violations.push(FieldViolation { field: "theme".into(), description: "is too long".into() });
        }
        let provider = req.provider_code.trim().to_owned();
        if !provider.is_empty() && !is_valid_subject_token(&provider) {
            violations.push(FieldViolation {
                field: "provider_code".into(),
                description: "must be lowercase ASCII letters, digits or dashes".into(),
            });
        }
        if !violations.is_empty() {
            return Err(ServiceError::invalid_fields(violations));
        }
        let category = category_from_proto(req.category)?;
        let price_kind = price_kind_from_proto(req.price_kind)?;
        let after: Option<search::Cursor> = page::decode(&req.page_token)?;
        let limit = usize::try_from(page::size(req.page_size)).unwrap_or(20);
        let member = if req.eligible_only {
            let member_id = access::eligibility_member(caller).map_err(|d| denied(d, "member", ""))?;
            let row = store::member(&self.pool, member_id).await?.filter(|m| m.status == "active");
            let profile = row.as_ref().and_then(store::MemberRow::profile).ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::FailedPrecondition,
                    "MEMBER_NOT_ACTIVE",
                    "the catalogue does not know your collectivité as an active member yet; retry in a moment",
                )
            })?;
            Some(profile)
        } else {
            None
        };
        let words = search::query_words(&req.q);
        let asked = words.join(" ");
        let rows = self.matches(words).await?;
        let corrected = rows.first().and_then(|r| r.corrected.clone()).unwrap_or_default();
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            let o = &row.offer;
            let category =
                Category::parse(&o.category).ok_or_else(|| ServiceError::internal("reading an offer", &o.code))?;
            hits.push(Hit {
                code: o.code.clone(),
                category,
                themes: o.themes.clone(),
                provider_code: o.provider_code.clone(),
                price_kind: o.price_kind.clone(),
                eligibility: o.eligibility(),
                rank: row.rank,
            });
        }
        let filters = Filters {
            category,
            theme: (!theme.is_empty()).then_some(theme),
            provider_code: (!provider.is_empty()).then_some(provider),
            price_kind: price_kind.map(str::to_owned),
            member,
        };
        let result = search::page(&hits, &filters, after.as_ref(), limit);
        let mut offers = Vec::with_capacity(result.items.len());
        for i in &result.items {
            let row = &rows[*i];
            let mut offer = offer_to_proto(&row.offer)?;
            offer.rank = row.rank;
            // Results carry the summary; the description (the long text) comes with GetOffer.
            offer.description = String::new();
            offers.push(offer);
        }
        let facet = |name: &str, counts: BTreeMap<String, u32>| pb::Facet {
            name: name.to_owned(),
            values: counts.into_iter().map(|(value, count)| pb::FacetValue { value, count }).collect(),
        };
        let f = result.facets;
        Ok(pb::SearchOffersResponse {
            offers,
            next_page_token: result.next.as_ref().map(page::encode).unwrap_or_default(),
            facets: vec![
                facet("category", f.category),
                facet("theme", f.theme),
                facet("provider", f.provider),
                facet("price_kind", f.price_kind),
            ],
            total: result.total,
            corrected_q: if corrected.is_empty() || corrected == asked { String::new() } else { corrected },
        })
    }
}

// ---- the operator's writes ----------------------------------------------------------------------------------

/// Who edits through the API.
const OPERATOR: &str = "operator";

impl CatalogueApi {
    async fn known_providers(&self, conn: &mut sqlx::PgConnection) -> Result<HashSet<String>, ServiceError> {
        Ok(store::all_providers(conn).await?.into_iter().map(|p| p.code).collect())
    }

    async fn provider_of(&self, conn: &mut sqlx::PgConnection, code: &str) -> Result<Provider, ServiceError> {
        store::provider_by_code(conn, code)
            .await?
            .as_ref()
            .and_then(ProviderRow::to_domain)
            .ok_or_else(|| ServiceError::internal("reading a provider", code))
    }

    async fn create_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::CreateOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| denied(d, "offer", ""))?;
        let input = offer_input(req.offer.ok_or_else(|| ServiceError::invalid("offer", "is required"))?)?;
        let mut tx = self.pool.begin().await?;
        let providers = self.known_providers(&mut tx).await?;
        let content = domain::validate_offer(input, &providers).map_err(|v| prefixed("offer.", v))?;
        if store::offer_by_code(&self.pool, &content.code).await?.is_some() {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                "OFFER_CODE_TAKEN",
                format!("an offer with code {} exists", content.code),
            ));
        }
        let row = store::write_offer(&mut tx, Uuid::now_v7(), 1, OfferStatus::Draft, OPERATOR, &content).await?;
        tx.commit().await.map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => ServiceError::new(
                ErrorCode::AlreadyExists,
                "OFFER_CODE_TAKEN",
                format!("an offer with code {} exists", content.code),
            ),
            _ => e.into(),
        })?;
        tracing::info!(offer = %row.code, id = %row.id, "offer drafted");
        offer_to_proto(&row)
    }

    async fn update_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::UpdateOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| denied(d, "offer", &req.id))?;
        let (id, code) = offer_key("id", &req.id)?;
        let mut input = offer_input(req.offer.ok_or_else(|| ServiceError::invalid("offer", "is required"))?)?;
        let mut tx = self.pool.begin().await?;
        let row = store::offer_for_update(&mut tx, id, &code).await?.ok_or_else(|| offer_not_found(&req.id))?;
        let current = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        input.code = current.content.code.clone();
        let providers = self.known_providers(&mut tx).await?;
        let content = domain::validate_offer(input, &providers).map_err(|v| prefixed("offer.", v))?;
        let written = match domain::edit(&current, &content, req.expected_version).map_err(lifecycle_error)? {
            Edit::Unchanged => return offer_to_proto(&row),
            Edit::InPlace => {
                store::write_offer(&mut tx, row.id, row.version, current.status, OPERATOR, &content).await?
            }
            Edit::NewVersion { version } => {
                let written = store::write_offer(&mut tx, row.id, version, current.status, OPERATOR, &content).await?;
                let provider = self.provider_of(&mut tx, &content.provider_code).await?;
                let offer = offer_to_proto(&written)?;
                events::offer_updated(&mut tx, &offer, &provider, row.version).await?;
                events::offer_published(&mut tx, offer, &provider).await?;
                store::refresh_search_words(&mut tx).await?;
                written
            }
        };
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(offer = %written.code, version = written.version, status = %written.status, "offer edited");
        offer_to_proto(&written)
    }

    async fn publish_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::PublishOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| denied(d, "offer", &req.id))?;
        let (id, code) = offer_key("id", &req.id)?;
        let mut tx = self.pool.begin().await?;
        let row = store::offer_for_update(&mut tx, id, &code).await?.ok_or_else(|| offer_not_found(&req.id))?;
        let current = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        let status = domain::publish(current.status).map_err(lifecycle_error)?;
        let written = store::set_status(&mut tx, row.id, status, OPERATOR).await?;
        let provider = self.provider_of(&mut tx, &current.content.provider_code).await?;
        events::offer_published(&mut tx, offer_to_proto(&written)?, &provider).await?;
        store::refresh_search_words(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(offer = %written.code, version = written.version, "offer published");
        offer_to_proto(&written)
    }

    async fn archive_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::ArchiveOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| denied(d, "offer", &req.id))?;
        let (id, code) = offer_key("id", &req.id)?;
        let reason = req.reason.trim();
        if reason.chars().count() > domain::MAX_VAT_NOTE_CHARS {
            return Err(ServiceError::invalid("reason", "must be at most 300 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let row = store::offer_for_update(&mut tx, id, &code).await?.ok_or_else(|| offer_not_found(&req.id))?;
        let current = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        let status = domain::archive(current.status).map_err(lifecycle_error)?;
        let written = store::set_status(&mut tx, row.id, status, OPERATOR).await?;
        if current.status == OfferStatus::Published {
            events::offer_archived(&mut tx, &written, reason).await?;
            store::refresh_search_words(&mut tx).await?;
        }
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(offer = %written.code, "offer archived");
        offer_to_proto(&written)
    }

    async fn write_provider(
        &self,
        caller: Option<&Caller>,
        req: pb::UpsertProviderRequest,
        create: bool,
    ) -> Result<pb::Provider, ServiceError> {
        let p = req.provider.ok_or_else(|| ServiceError::invalid("provider", "is required"))?;
        access::manage_catalogue(caller).map_err(|d| denied(d, "provider", &p.code))?;
        let kind = match pb::ProviderKind::try_from(p.kind) {
            Ok(pb::ProviderKind::DepartmentalService) => "departmental_service",
            Ok(pb::ProviderKind::AssociatedOrganisation) => "associated_organisation",
            _ => "",
        };
        let provider = domain::validate_provider(ProviderInput {
            code: p.code,
            name: p.name,
            kind: kind.to_owned(),
            contact_email: p.contact_email,
        })
        .map_err(|v| prefixed("provider.", v))?;
        let mut tx = self.pool.begin().await?;
        if create {
            if !store::insert_provider(&mut tx, &provider).await? {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    "PROVIDER_CODE_TAKEN",
                    format!("a provider with code {} exists", provider.code),
                ));
            }
        } else {
            let before = store::provider_by_code(&mut tx, &provider.code)
                .await?
                .ok_or_else(|| ServiceError::not_found("provider", &provider.code))?;
            if before.to_domain().as_ref() == Some(&provider) {
                return Ok(provider_to_proto(&provider));
            }
            store::update_provider(&mut tx, &provider).await?;
            // Read models carry the provider with each published offer: announce them again, as new versions.
            let offers = store::all_offers(&mut tx).await?;
            for row in offers.iter().filter(|o| o.provider_code == provider.code && o.status == "published") {
                let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
                let version = row.version.saturating_add(1);
                let written = store::write_offer(
                    &mut tx,
                    row.id,
                    version,
                    OfferStatus::Published,
                    &row.managed_by,
                    &stored.content,
                )
                .await?;
                let offer = offer_to_proto(&written)?;
                events::offer_updated(&mut tx, &offer, &provider, row.version).await?;
                events::offer_published(&mut tx, offer, &provider).await?;
            }
        }
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(provider = %provider.code, create, "provider written");
        Ok(provider_to_proto(&provider))
    }
}

// ---- exhibitions --------------------------------------------------------------------------------------------

impl CatalogueApi {
    /// A published (or archived: its loans go on) exhibition.
    async fn exhibition(&self, key: &str) -> Result<OfferRow, ServiceError> {
        let (id, code) = offer_key("exhibition_id", key)?;
        let row = match id {
            Some(id) => store::offer_by_id(&self.pool, id).await?,
            None => store::offer_by_code(&self.pool, &code).await?,
        };
        row.filter(|o| o.category == Category::ExhibitionLoan.as_str() && o.status != "draft").ok_or_else(|| {
            ServiceError::new(ErrorCode::NotFound, "EXHIBITION_NOT_FOUND", format!("exhibition {key} not found"))
        })
    }

    async fn availability(&self, req: pb::GetAvailabilityRequest) -> Result<pb::Availability, ServiceError> {
        let (from, to) = booking::calendar_period(&req.from, &req.to).map_err(ServiceError::invalid_fields)?;
        let offer = self.exhibition(&req.exhibition_id).await?;
        let mut conn = self.pool.acquire().await?;
        let copies = store::copies(&mut conn, offer.id).await?;
        drop(conn);
        let bookings = store::bookings_between(&self.pool, offer.id, from, to).await?;
        let busy: Vec<_> = bookings.iter().map(|b| (b.copy_id, b.start_date, b.end_date)).collect();
        let copy_ids: Vec<Uuid> = copies.iter().map(|c| c.id).collect();
        let days = booking::available_per_day(from, to, &copy_ids, &busy);
        Ok(pb::Availability {
            exhibition_id: offer.id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            copies: u32::try_from(copies.len()).unwrap_or(u32::MAX),
            copy_calendars: copies
                .iter()
                .map(|c| pb::CopyAvailability {
                    copy_id: c.id.to_string(),
                    label: c.label.clone(),
                    busy: bookings
                        .iter()
                        .filter(|b| b.copy_id == c.id)
                        .map(|b| pb::BusyPeriod {
                            from: b.start_date.to_string(),
                            to: b.end_date.to_string(),
                            status: booking_status_to_proto(&b.status).into(),
                        })
                        .collect(),
                })
                .collect(),
            days: days
                .into_iter()
                .map(|(date, available_copies)| pb::DayAvailability { date: date.to_string(), available_copies })
                .collect(),
        })
    }

    async fn hold(&self, caller: Option<&Caller>, req: pb::HoldBookingRequest) -> Result<pb::Booking, ServiceError> {
        let asked = optional_uuid("member_id", &req.member_id)?;
        let member_id = access::hold_for(caller, asked).map_err(|d| denied(d, "member", &req.member_id))?;
        let request_id = optional_uuid("request_id", &req.request_id)?;
        let (from, to) =
            booking::loan_period(&req.from, &req.to, time::now().date_naive()).map_err(ServiceError::invalid_fields)?;
        let offer = self.exhibition(&req.exhibition_id).await?;
        if offer.status != OfferStatus::Published.as_str() {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "OFFER_ARCHIVED",
                "this exhibition is no longer lent",
            ));
        }
        let mut conn = self.pool.acquire().await?;
        // A retried hold for the same request returns the booking it already made.
        if let Some(request_id) = request_id {
            for id in store::bookings_of_request(&mut conn, request_id).await? {
                if let Some(b) = store::booking(&mut conn, id).await?
                    && b.offer_id == offer.id
                    && b.start_date == from
                    && b.end_date == to
                {
                    return Ok(booking_to_proto(&b));
                }
            }
        }
        let copies = store::copies(&mut conn, offer.id).await?;
        let id = Uuid::now_v7();
        // Each copy in turn, each insert on its own: the exclusion constraint refuses a copy already held or lent
        // for overlapping dates, even when many holds race.
        let mut attempts = 0;
        let mut rest = copies.iter();
        let mut copy = rest.next();
        while let Some(c) = copy {
            attempts += 1;
            if attempts > MAX_HOLD_ATTEMPTS {
                break;
            }
            match store::insert_hold(&mut conn, id, c.id, offer.id, member_id, request_id, from, to).await {
                Ok(()) => {
                    let b =
                        store::booking(&mut conn, id).await?.ok_or_else(|| ServiceError::internal("holding", id))?;
                    tracing::info!(booking = %id, exhibition = %offer.code, copy = c.number, %from, %to, "copy held");
                    return Ok(booking_to_proto(&b));
                }
                Err(HoldError::Taken) => copy = rest.next(),
                Err(HoldError::Contended) => tracing::debug!(copy = c.number, "hold contended; trying the copy again"),
                Err(HoldError::Db(e)) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            "NO_COPY_AVAILABLE",
            format!("every copy of {} is held or lent for some of {from} – {to}", offer.code),
        ))
    }

    /// Confirms (`confirm`) or releases a booking, with the caller's rights checked, in one transaction.
    async fn settle(
        &self,
        caller: Option<&Caller>,
        req: pb::BookingActionRequest,
        confirm: bool,
    ) -> Result<pb::Booking, ServiceError> {
        let id = Uuid::parse_str(req.id.trim()).map_err(|_| ServiceError::invalid("id", "must be a UUID"))?;
        let reason = req.reason.trim();
        if reason.chars().count() > domain::MAX_VAT_NOTE_CHARS {
            return Err(ServiceError::invalid("reason", "must be at most 300 characters"));
        }
        let not_found =
            || ServiceError::new(ErrorCode::NotFound, "BOOKING_NOT_FOUND", format!("booking {id} not found"));
        let mut tx = self.pool.begin().await?;
        if !store::lock_booking(&mut tx, id).await? {
            return Err(not_found());
        }
        let b = store::booking(&mut tx, id).await?.ok_or_else(not_found)?;
        let allowed = if confirm {
            access::confirm(caller, &b.provider_code)
        } else {
            access::release(caller, &b.provider_code, b.member_id)
        };
        allowed.map_err(|d| match d {
            Denied::NotFound => not_found(),
            d => denied(d, "booking", &req.id),
        })?;
        let row = if confirm {
            events::confirm_booking(&mut tx, &b).await?
        } else {
            events::release_booking(&mut tx, &b, if reason.is_empty() { "released" } else { reason }).await?
        };
        tx.commit().await?;
        Ok(booking_to_proto(&row))
    }
}

#[tonic::async_trait]
impl CatalogueService for CatalogueApi {
    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.offers(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_offer(&self, request: Request<pb::GetOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.offer(caller.as_ref(), request.into_inner()).await?))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        self.caller(&request).await?;
        Ok(Response::new(self.providers().await?))
    }

    async fn search_offers(
        &self,
        request: Request<pb::SearchOffersRequest>,
    ) -> Result<Response<pb::SearchOffersResponse>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.search_cached(caller.as_ref(), request.into_inner()).await?))
    }

    async fn create_offer(&self, request: Request<pb::CreateOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(CatalogueApi::create_offer(self, caller.as_ref(), request.into_inner()).await?))
    }

    async fn update_offer(&self, request: Request<pb::UpdateOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(CatalogueApi::update_offer(self, caller.as_ref(), request.into_inner()).await?))
    }

    async fn publish_offer(&self, request: Request<pb::PublishOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(CatalogueApi::publish_offer(self, caller.as_ref(), request.into_inner()).await?))
    }

    async fn archive_offer(&self, request: Request<pb::ArchiveOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(CatalogueApi::archive_offer(self, caller.as_ref(), request.into_inner()).await?))
    }

    async fn create_provider(
        &self,
        request: Request<pb::UpsertProviderRequest>,
    ) -> Result<Response<pb::Provider>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.write_provider(caller.as_ref(), request.into_inner(), true).await?))
    }

    async fn update_provider(
        &self,
        request: Request<pb::UpsertProviderRequest>,
    ) -> Result<Response<pb::Provider>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.write_provider(caller.as_ref(), request.into_inner(), false).await?))
    }

    async fn get_availability(
        &self,
        request: Request<pb::GetAvailabilityRequest>,
    ) -> Result<Response<pb::Availability>, Status> {
        self.caller(&request).await?;
        Ok(Response::new(self.availability(request.into_inner()).await?))
    }

    async fn hold_booking(&self, request: Request<pb::HoldBookingRequest>) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.hold(caller.as_ref(), request.into_inner()).await?))
    }

    async fn confirm_booking(
        &self,
        request: Request<pb::BookingActionRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.settle(caller.as_ref(), request.into_inner(), true).await?))
    }

    async fn release_booking(
        &self,
        request: Request<pb::BookingActionRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.settle(caller.as_ref(), request.into_inner(), false).await?))
    }
}
