//! gRPC transport of the requests service.

use chrono::{DateTime, Utc};
use id77_platform::auth::{Authenticator, Caller, Role};
use id77_platform::{ErrorCode, ServiceError, outbox, page, time};
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::requests_service_server::RequestsService;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, RequestFacts};
use crate::domain::lifecycle::{self, Actor, RequestStatus, Trigger};
use crate::domain::{self, Category, RawDates, RawSite, stats};
use crate::events::{self, Cause, SUBJECT_SUBMITTED};
use crate::store::{self, Filter, HistoryRow, RequestRow};

pub struct RequestsApi {
    pool: PgPool,
    /// Verifies the caller's access token (forwarded by the gateway) on every call.
    auth: Authenticator,
}

impl RequestsApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth }
    }
}

pub fn status_to_proto(status: RequestStatus) -> pb::RequestStatus {
    match status {
        RequestStatus::Submitted => pb::RequestStatus::Submitted,
        RequestStatus::Triage => pb::RequestStatus::Triage,
        RequestStatus::Referred => pb::RequestStatus::Referred,
        RequestStatus::Accepted => pb::RequestStatus::Accepted,
        RequestStatus::InProgress => pb::RequestStatus::InProgress,
        RequestStatus::Completed => pb::RequestStatus::Completed,
        RequestStatus::Declined => pb::RequestStatus::Declined,
        RequestStatus::Cancelled => pb::RequestStatus::Cancelled,
        RequestStatus::Closed => pb::RequestStatus::Closed,
    }
}

fn status_name_to_proto(status: &str) -> i32 {
    RequestStatus::parse(status).map_or(pb::RequestStatus::Unspecified, status_to_proto).into()
}

/// The status named by a filter (UNSPECIFIED: no filter).
pub fn status_from_proto(status: i32) -> Result<Option<RequestStatus>, ServiceError> {
    let invalid = || ServiceError::invalid("status", "is not a request status");
    Ok(Some(match pb::RequestStatus::try_from(status).map_err(|_| invalid())? {
        pb::RequestStatus::Unspecified => return Ok(None),
        pb::RequestStatus::Submitted => RequestStatus::Submitted,
        pb::RequestStatus::Triage => RequestStatus::Triage,
        pb::RequestStatus::Referred => RequestStatus::Referred,
        pb::RequestStatus::Accepted => RequestStatus::Accepted,
        pb::RequestStatus::InProgress => RequestStatus::InProgress,
        pb::RequestStatus::Completed => RequestStatus::Completed,
        pb::RequestStatus::Declined => RequestStatus::Declined,
        pb::RequestStatus::Cancelled => RequestStatus::Cancelled,
        pb::RequestStatus::Closed => RequestStatus::Closed,
    }))
}

fn to_proto(r: RequestRow, history: Vec<HistoryRow>, feedback: Option<store::FeedbackRow>) -> pb::Request {
    let details = r.details.0;
    pb::Request {
        id: r.id.to_string(),
        member_id: r.member_id.to_string(),
        offer_id: r.offer_id.map(|id| id.to_string()).unwrap_or_default(),
        subject: r.subject,
        description: r.description,
        status: status_name_to_proto(&r.status),
        provider_code: r.provider_code.unwrap_or_default(),
        submitted_at: Some(time::to_proto(r.submitted_at)),
        updated_at: Some(time::to_proto(r.updated_at)),
        history: history
            .into_iter()
            .map(|h| pb::StatusChange {
                status: status_name_to_proto(&h.status),
                reason: h.reason,
                at: Some(time::to_proto(h.at)),
                from: h.from_status.as_deref().map_or(pb::RequestStatus::Unspecified.into(), status_name_to_proto),
                actor_user_id: h.actor_user_id.map(|id| id.to_string()).unwrap_or_default(),
                actor_role: h.actor_role,
                provider_code: h.provider_code.unwrap_or_default(),
                actor_name: h.actor_name,
            })
            .collect(),
        offer_version: r.offer_version.unwrap_or(0),
        offer_category: r.offer_category.unwrap_or_default(),
        kind: if r.orientation { "orientation" } else { "offer" }.to_owned(),
        dates: details.dates.map(|d| pb::LoanDates {
            start_date: d.start_date.format("%Y-%m-%d").to_string(),
            end_date: d.end_date.format("%Y-%m-%d").to_string(),
        }),
        site: details.site.map(|s| pb::Site { address: s.address, commune_insee: s.commune_insee }),
        feedback: feedback.map(|f| pb::Feedback {
            rating: u32::try_from(f.rating).unwrap_or(0),
            comment: f.comment,
            given_by: f.given_by.to_string(),
            given_at: Some(time::to_proto(f.given_at)),
            updated_at: Some(time::to_proto(f.updated_at)),
        }),
        first_answered_at: time::to_proto_opt(r.first_answered_at),
        completed_at: time::to_proto_opt(r.completed_at),
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

fn timestamp(
    field: &str,
    ts: Option<&id77_proto::prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    match ts {
        None => Ok(None),
        Some(ts) => time::from_proto(ts).map(Some).ok_or_else(|| ServiceError::invalid(field, "is not a valid time")),
    }
}

/// The user as the actor of a change, in the first of `roles` it has, with its display name
/// ([`crate::notify::name_of`]).
async fn actor(conn: &mut PgConnection, caller: &Caller, roles: &[Role]) -> Result<Actor, sqlx::Error> {
    let role = roles.iter().find(|r| caller.has(**r)).map_or("unknown", |r| r.as_str());
    let name = crate::notify::name_of(conn, caller).await?;
    Ok(Actor::User { id: caller.user_id, role: role.to_owned(), name })
}

impl RequestsApi {
    async fn full(&self, row: RequestRow) -> Result<pb::Request, ServiceError> {
        let history = store::history(&self.pool, row.id).await?;
        let feedback = store::feedback(&self.pool, row.id).await?;
        Ok(to_proto(row, history, feedback))
    }

    /// A request as the caller may see it: not found when it may not.
    async fn visible(&self, caller: &Caller, id: Uuid) -> Result<RequestRow, ServiceError> {
        let row = store::get_request(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("request", &id.to_string()))?;
        // The referent relation only matters to a referent: no lookup for anyone else.
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, row.member_id).await? } else { None };
        let facts = RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent };
        access::read_request(caller, &facts).map_err(|d| d.into_error("request", &id.to_string()))?;
        Ok(row)
    }

    /// An idempotent retry: the same body returns the stored request, another body is a conflict.
    async fn replay(&self, existing: RequestRow, s: &domain::Submission) -> Result<pb::Request, ServiceError> {
        if existing.idempotency_fingerprint.as_deref().is_some_and(|f| f != s.fingerprint()) {
            return Err(domain::idempotency_conflict(s.idempotency_key.as_deref().unwrap_or_default()));
        }
        self.full(existing).await
    }

    async fn submit(&self, caller: &Caller, req: pb::SubmitRequestRequest) -> Result<pb::Request, ServiceError> {
        // Only a member's users, for their own member; an empty member_id is theirs.
        let own = access::submission_member(caller, None).map_err(|d| d.into_error("member", ""))?;
        let member_id = if req.member_id.trim().is_empty() { own.to_string() } else { req.member_id };
        let s = domain::validate_submission(domain::RawSubmission {
            member_id,
            offer_id: req.offer_id,
            orientation: req.orientation,
            subject: req.subject,
            description: req.description,
            idempotency_key: req.idempotency_key,
            dates: req.dates.map(|d| RawDates { start_date: d.start_date, end_date: d.end_date }),
            site: req.site.map(|s| RawSite { address: s.address, commune_insee: s.commune_insee }),
        })?;
        access::submission_member(caller, Some(s.member_id))
            .map_err(|d| d.into_error("member", &s.member_id.to_string()))?;
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &s.idempotency_key
            && let Some(existing) = store::by_idempotency_key(&mut tx, s.member_id, key).await?
        {
            tx.rollback().await?;
            return self.replay(existing, &s).await;
        }
        match store::member_status(&mut tx, s.member_id).await?.as_deref() {
            Some("active") => {}
            status => {
                return Err(ServiceError::new(
                    ErrorCode::FailedPrecondition,
                    "MEMBER_NOT_ACTIVE",
                    format!(
                        "member {} is {}; only an active member can submit requests",
                        s.member_id,
                        status.unwrap_or("not known yet")
                    ),
                ));
            }
        }
        let offer = match s.offer_id {
            None => None,
            Some(offer_id) => Some(store::offer(&mut tx, offer_id).await?.ok_or_else(|| {
                ServiceError::new(ErrorCode::NotFound, "OFFER_NOT_FOUND", format!("offer {offer_id} not found"))
            })?),
        };
        let category = offer.as_ref().map(|o| Category::parse(&o.category));
        let now = time::now();
        let member_commune = store::member_commune(&mut tx, s.member_id).await?;
        let details = domain::validate_details(
            // An offer whose category requests does not know yet needs nothing in particular.
            category.map(|c| c.unwrap_or(Category::AwarenessTraining)),
            s.dates.as_ref(),
            s.site.as_ref(),
            now.date_naive(),
            member_commune.as_deref(),
        )?;
        let row = RequestRow {
            id: Uuid::now_v7(),
            member_id: s.member_id,
            offer_id: s.offer_id,
            subject: s.subject.clone(),
            description: s.description.clone(),
            status: RequestStatus::Submitted.as_str().to_owned(),
            provider_code: None,
            submitted_at: now,
            updated_at: now,
            offer_version: offer.as_ref().map(|o| o.version),
            offer_category: offer.as_ref().map(|o| o.category.clone()).filter(|c| !c.is_empty()),
            orientation: s.offer_id.is_none(),
            details: Json(details),
            idempotency_fingerprint: Some(s.fingerprint()),
            first_answered_at: None,
            completed_at: None,
        };
        let submitter = actor(&mut tx, caller, &access::SUBMITTERS).await?;
        match store::insert_request(&mut tx, &row, s.idempotency_key.as_deref(), &submitter).await {
            Ok(()) => {}
            // Same key submitted concurrently: the other transaction won; return its request (or a conflict).
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                drop(tx);
                let key = s.idempotency_key.clone().unwrap_or_default();
                let mut conn = self.pool.acquire().await?;
                let existing = store::by_idempotency_key(&mut conn, s.member_id, &key)
                    .await?
                    .ok_or_else(|| ServiceError::internal("resolving an idempotency race", "request vanished"))?;
                return self.replay(existing, &s).await;
            }
            Err(e) => return Err(e.into()),
        }
        let event = id77_proto::requests::v1::RequestSubmitted {
            request_id: row.id.to_string(),
            member_id: row.member_id.to_string(),
            offer_id: row.offer_id.map(|id| id.to_string()).unwrap_or_default(),
            subject: row.subject.clone(),
            description: row.description.clone(),
            occurred_at: Some(time::to_proto(now)),
            offer_version: row.offer_version.unwrap_or(0),
            offer_category: row.offer_category.clone().unwrap_or_default(),
        };
        outbox::enqueue(&mut tx, SUBJECT_SUBMITTED, &event).await?;
        if row.orientation {
            // Routing queues every request without an offer for the coordinator's triage.
            let state = events::state_of(&row).map_err(|e| ServiceError::internal("new request", e))?;
            if let Some(step) = lifecycle::apply(&state, &Trigger::Queued, now)? {
                events::record(&mut tx, &row, &step, &Actor::System, &Cause::default()).await?;
            }
        }
        tx.commit().await?;
        tracing::info!(request_id = %row.id, member_id = %row.member_id, offer_id = ?row.offer_id, "request submitted");
        let row = store::get_request(&self.pool, row.id)
            .await?
            .ok_or_else(|| ServiceError::internal("reading back", "request vanished"))?;
        self.full(row).await
    }

    async fn get(&self, caller: &Caller, req: pb::GetRequestRequest) -> Result<pb::Request, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("request", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row = self.visible(caller, id).await?;
        self.full(row).await
    }

    /// Whose requests, and with which filters, a list or summary covers.
    async fn scope(
        &self,
        caller: &Caller,
        req: &pb::ListRequestsRequest,
    ) -> Result<(store::Scope, Filter), ServiceError> {
        access::may_list(caller).map_err(|d| d.into_error("member", &req.member_id))?;
        let requested = match req.member_id.trim() {
            "" => None,
            raw => Some(parse_id("member_id", raw)?),
        };
        let referent = match requested {
            Some(member) if caller.has(Role::Referent) => store::referent_of(&self.pool, member).await?,
            _ => None,
        };
        let scope = access::list_scope(caller, requested, referent)
            .map_err(|d| d.into_error("member", &requested.map(|m| m.to_string()).unwrap_or_default()))?;
        let category = match req.offer_category.trim() {
            "" => None,
            raw => Some(
                Category::parse(raw)
                    .ok_or_else(|| ServiceError::invalid("offer_category", "is not an offer category"))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let filter = Filter {
            status: status_from_proto(req.status)?.map(|s| s.as_str().to_owned()),
            category,
            from: timestamp("submitted_from", req.submitted_from.as_ref())?,
            to: timestamp("submitted_to", req.submitted_to.as_ref())?,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && to < from
        {
            return Err(ServiceError::invalid("submitted_to", "must not be before submitted_from"));
        }
        Ok((scope, filter))
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListRequestsRequest,
    ) -> Result<pb::ListRequestsResponse, ServiceError> {
        let (scope, filter) = self.scope(caller, &req).await?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list(&self.pool, &scope, &filter, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.submitted_at, r.id)));
        let mut requests = Vec::with_capacity(rows.len());
        for row in rows {
            requests.push(self.full(row).await?);
        }
        Ok(pb::ListRequestsResponse { requests, next_page_token: next })
    }

    async fn summarize(
        &self,
        caller: &Caller,
        req: pb::ListRequestsRequest,
    ) -> Result<pb::RequestSummary, ServiceError> {
        let (scope, filter) = self.scope(caller, &req).await?;
        let rows = store::count_by_status(&self.pool, &scope, &filter).await?;
        let counts: Vec<pb::StatusCount> = stats::status_counts(&rows)
            .into_iter()
            .map(|(status, count)| pb::StatusCount { status: status_to_proto(status).into(), count })
            .collect();
        let total = counts.iter().map(|c| c.count).sum();
        Ok(pb::RequestSummary { counts, total })
    }

    /// Applies a user's command to a request the caller may act on.
    async fn command(
        &self,
        caller: &Caller,
        id: Uuid,
        trigger: Trigger,
        roles: &[Role],
        allowed: impl Fn(&RequestFacts<'_>) -> Result<(), access::Denied>,
    ) -> Result<pb::Request, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let not_found = || ServiceError::not_found("request", &id.to_string());
        let row = store::request_for_update(&mut tx, id).await?.ok_or_else(not_found)?;
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, row.member_id).await? } else { None };
        let facts = RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent };
        allowed(&facts).map_err(|d| d.into_error("request", &id.to_string()))?;
        let state = events::state_of(&row).map_err(|e| ServiceError::internal("reading a request", e))?;
        let step = lifecycle::apply(&state, &trigger, time::now())?
            .ok_or_else(|| lifecycle::invalid_transition(state.status, trigger.name()))?;
        let who = actor(&mut tx, caller, roles).await?;
        events::record(&mut tx, &row, &step, &who, &Cause::default()).await?;
        tx.commit().await?;
        let row = store::get_request(&self.pool, id).await?.ok_or_else(not_found)?;
        self.full(row).await
    }

    async fn cancel(&self, caller: &Caller, req: pb::CancelRequestRequest) -> Result<pb::Request, ServiceError> {
        if !caller.has_any(&access::CANCELLERS) {
            return Err(access::Denied::Forbidden.into_error("request", &req.id));
        }
        let id = parse_id("id", &req.id)?;
        let reason = domain::validate_reason(&req.reason)?;
        let roles = [Role::MemberAdmin, Role::MemberUser, Role::Coordinator];
        self.command(caller, id, Trigger::Cancel { reason }, &roles, |f| access::cancel_request(caller, f)).await
    }

    async fn close(&self, caller: &Caller, req: pb::CloseRequestRequest) -> Result<pb::Request, ServiceError> {
        access::coordinate(caller).map_err(|d| d.into_error("request", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let reason = domain::validate_reason(&req.reason)?;
        self.command(caller, id, Trigger::Close { reason }, &[Role::Coordinator], |_| Ok(())).await
    }

    async fn feedback(&self, caller: &Caller, req: pb::GiveFeedbackRequest) -> Result<pb::Request, ServiceError> {
        if !caller.has_any(&access::SUBMITTERS) {
            return Err(access::Denied::Forbidden.into_error("request", &req.request_id));
        }
        let id = parse_id("request_id", &req.request_id)?;
        let mut tx = self.pool.begin().await?;
        let not_found = || ServiceError::not_found("request", &id.to_string());
        let row = store::request_for_update(&mut tx, id).await?.ok_or_else(not_found)?;
        let facts =
            RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent: None };
        access::give_feedback(caller, &facts).map_err(|d| d.into_error("request", &id.to_string()))?;
        let status = events::state_of(&row).map_err(|e| ServiceError::internal("reading a request", e))?.status;
        let feedback = domain::validate_feedback(status, req.rating, &req.comment)?;
        store::upsert_feedback(&mut tx, id, feedback.rating, &feedback.comment, caller.user_id, time::now()).await?;
        tx.commit().await?;
        tracing::info!(request_id = %id, rating = feedback.rating, "feedback recorded");
        let row = store::get_request(&self.pool, id).await?.ok_or_else(not_found)?;
        self.full(row).await
    }

    async fn statistics(
        &self,
        caller: &Caller,
        req: pb::RequestStatisticsRequest,
    ) -> Result<pb::RequestStatistics, ServiceError> {
        access::coordinate(caller).map_err(|d| d.into_error("statistics", ""))?;
        let from = timestamp("from", req.from.as_ref())?.ok_or_else(|| ServiceError::invalid("from", "is required"))?;
        let to = timestamp("to", req.to.as_ref())?.ok_or_else(|| ServiceError::invalid("to", "is required"))?;
        if to <= from {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        let s = store::statistics(&self.pool, from, to).await?;
        let keyed = |rows: Vec<(String, i64)>| {
            stats::ranked(rows).into_iter().map(|(key, count)| pb::KeyCount { key, count }).collect::<Vec<_>>()
        };
        let duration = |(count, median): (i64, Option<f64>)| pb::DurationStats {
            count: u64::try_from(count).unwrap_or(0),
            median_seconds: median.unwrap_or(0.0),
        };
        let by_status: Vec<pb::KeyCount> = stats::status_counts(&s.by_status)
            .into_iter()
            .map(|(status, count)| pb::KeyCount { key: status.as_str().to_owned(), count })
            .collect();
        let (count, mean, distribution) = stats::satisfaction(&s.ratings);
        Ok(pb::RequestStatistics {
            from: Some(time::to_proto(from)),
            to: Some(time::to_proto(to)),
            total: by_status.iter().map(|c| c.count).sum(),
            by_status,
            by_category: keyed(s.by_category),
            by_provider: keyed(s.by_provider),
            by_epci: keyed(s.by_epci),
            by_arrondissement: keyed(s.by_arrondissement),
            time_to_first_answer: Some(duration(s.first_answer)),
            time_to_completion: Some(duration(s.completion)),
            satisfaction: Some(pb::Satisfaction { count, mean, distribution: distribution.to_vec() }),
        })
    }
}

#[tonic::async_trait]
impl RequestsService for RequestsApi {
    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::Request>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.submit(&caller, request.into_inner()).await?))
    }

    async fn get_request(&self, request: Request<pb::GetRequestRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.get(&caller, request.into_inner()).await?))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn summarize_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::RequestSummary>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.summarize(&caller, request.into_inner()).await?))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::Request>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.cancel(&caller, request.into_inner()).await?))
    }

    async fn close_request(&self, request: Request<pb::CloseRequestRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.close(&caller, request.into_inner()).await?))
    }

    async fn give_feedback(&self, request: Request<pb::GiveFeedbackRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.feedback(&caller, request.into_inner()).await?))
    }

    async fn get_request_statistics(
        &self,
        request: Request<pb::RequestStatisticsRequest>,
    ) -> Result<Response<pb::RequestStatistics>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.statistics(&caller, request.into_inner()).await?))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let caller = self.auth.caller(&request).await?;
        let p = crate::notify::store::preferences(&self.pool, caller.user_id).await.map_err(ServiceError::from)?;
        Ok(Response::new(pb::NotificationPreferences {
            status_changed: p.status_changed,
            message_posted: p.message_posted,
        }))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<pb::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let caller = self.auth.caller(&request).await?;
        let req = request.into_inner();
        let p = crate::notify::store::update_preferences(
            &self.pool,
            caller.user_id,
            req.status_changed,
            req.message_posted,
        )
        .await
        .map_err(ServiceError::from)?;
        tracing::info!(user_id = %caller.user_id, status_changed = p.status_changed, message_posted = p.message_posted, "notification preferences changed");
        Ok(Response::new(pb::NotificationPreferences {
            status_changed: p.status_changed,
            message_posted: p.message_posted,
        }))
    }
}
