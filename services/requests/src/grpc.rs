//! gRPC transport of the requests service.

use id77_platform::auth::{Authenticator, Caller, Role};
use id77_platform::{ErrorCode, ServiceError, outbox, page, time};
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::requests_service_server::RequestsService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, RequestFacts};
use crate::domain::{self, RequestStatus};
use crate::store::{self, HistoryRow, RequestRow};

pub const SUBJECT_SUBMITTED: &str = "id77.requests.request.submitted";

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

fn status_to_proto(status: &str) -> pb::RequestStatus {
    match RequestStatus::parse(status) {
        Some(RequestStatus::Submitted) => pb::RequestStatus::Submitted,
        Some(RequestStatus::Referred) => pb::RequestStatus::Referred,
        Some(RequestStatus::Accepted) => pb::RequestStatus::Accepted,
        Some(RequestStatus::Declined) => pb::RequestStatus::Declined,
        Some(RequestStatus::Cancelled) => pb::RequestStatus::Cancelled,
        Some(RequestStatus::Completed) => pb::RequestStatus::Completed,
        None => pb::RequestStatus::Unspecified,
    }
}

fn to_proto(r: RequestRow, history: Vec<HistoryRow>) -> pb::Request {
    pb::Request {
        id: r.id.to_string(),
        member_id: r.member_id.to_string(),
        offer_id: r.offer_id.to_string(),
        subject: r.subject,
        description: r.description,
        status: status_to_proto(&r.status).into(),
        provider_code: r.provider_code.unwrap_or_default(),
        submitted_at: Some(time::to_proto(r.submitted_at)),
        updated_at: Some(time::to_proto(r.updated_at)),
        history: history
            .into_iter()
            .map(|h| pb::StatusChange {
                status: status_to_proto(&h.status).into(),
                reason: h.reason,
                at: Some(time::to_proto(h.at)),
            })
            .collect(),
    }
}

impl RequestsApi {
    async fn with_history(&self, row: RequestRow) -> Result<pb::Request, ServiceError> {
        let history = store::history(&self.pool, row.id).await?;
        Ok(to_proto(row, history))
    }

    async fn submit(&self, caller: &Caller, req: pb::SubmitRequestRequest) -> Result<pb::Request, ServiceError> {
        // Only a member's users, for their own member; an empty member_id is theirs.
        let own = access::submission_member(caller, None).map_err(|d| d.into_error("member", ""))?;
        let member_id = if req.member_id.trim().is_empty() { own.to_string() } else { req.member_id };
        let s = domain::validate_submission(
            &member_id,
            &req.offer_id,
            &req.subject,
            &req.description,
            &req.idempotency_key,
        )?;
        access::submission_member(caller, Some(s.member_id))
            .map_err(|d| d.into_error("member", &s.member_id.to_string()))?;
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &s.idempotency_key
            && let Some(existing) = store::by_idempotency_key(&mut tx, s.member_id, key).await?
        {
            tx.rollback().await?;
            return self.with_history(existing).await;
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
        if !store::offer_exists(&mut tx, s.offer_id).await? {
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                "OFFER_NOT_FOUND",
                format!("offer {} not found", s.offer_id),
            ));
        }
        let now = time::now();
        let row = RequestRow {
            id: Uuid::now_v7(),
            member_id: s.member_id,
            offer_id: s.offer_id,
            subject: s.subject,
            description: s.description,
            status: RequestStatus::Submitted.as_str().to_owned(),
            provider_code: None,
            submitted_at: now,
            updated_at: now,
        };
        match store::insert_request(&mut tx, &row, s.idempotency_key.as_deref()).await {
            Ok(()) => {}
            // Same key submitted concurrently: the other transaction won; return its request.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                drop(tx);
                let key = s.idempotency_key.unwrap_or_default();
                let mut conn = self.pool.acquire().await?;
                let existing = store::by_idempotency_key(&mut conn, s.member_id, &key)
                    .await?
                    .ok_or_else(|| ServiceError::internal("resolving an idempotency race", "request vanished"))?;
                return self.with_history(existing).await;
            }
            Err(e) => return Err(e.into()),
        }
        let event = id77_proto::requests::v1::RequestSubmitted {
            request_id: row.id.to_string(),
            member_id: row.member_id.to_string(),
            offer_id: row.offer_id.to_string(),
            subject: row.subject.clone(),
            description: row.description.clone(),
            occurred_at: Some(time::to_proto(now)),
        };
        outbox::enqueue(&mut tx, SUBJECT_SUBMITTED, &event).await?;
        tx.commit().await?;
        tracing::info!(request_id = %row.id, member_id = %row.member_id, offer_id = %row.offer_id, "request submitted");
        self.with_history(row).await
    }

    async fn get(&self, caller: &Caller, req: pb::GetRequestRequest) -> Result<pb::Request, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("request", &req.id))?;
        let id = Uuid::parse_str(req.id.trim()).map_err(|_| ServiceError::invalid("id", "must be a UUID"))?;
        let not_found = || ServiceError::not_found("request", &id.to_string());
        let row = store::get_request(&self.pool, id).await?.ok_or_else(not_found)?;
        // The referent relation only matters to a referent: no lookup for anyone else.
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, row.member_id).await? } else { None };
        let facts = RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent };
        access::read_request(caller, &facts).map_err(|d| d.into_error("request", &id.to_string()))?;
        self.with_history(row).await
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListRequestsRequest,
    ) -> Result<pb::ListRequestsResponse, ServiceError> {
        access::may_list(caller).map_err(|d| d.into_error("member", &req.member_id))?;
        let requested = match req.member_id.trim() {
            "" => None,
            raw => Some(Uuid::parse_str(raw).map_err(|_| ServiceError::invalid("member_id", "must be a UUID"))?),
        };
        let referent = match requested {
            Some(member) if caller.has(Role::Referent) => store::referent_of(&self.pool, member).await?,
            _ => None,
        };
        let member_id = access::list_member(caller, requested, referent)
            .map_err(|d| d.into_error("member", &requested.map(|m| m.to_string()).unwrap_or_default()))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_by_member(&self.pool, member_id, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.submitted_at, r.id)));
        let mut requests = Vec::with_capacity(rows.len());
        for row in rows {
            requests.push(self.with_history(row).await?);
        }
        Ok(pb::ListRequestsResponse { requests, next_page_token: next })
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
}
