//! gRPC transport of the requests service.

use id77_platform::{ErrorCode, ServiceError, outbox, page, time};
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::requests_service_server::RequestsService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, RequestStatus};
use crate::store::{self, HistoryRow, RequestRow};

pub const SUBJECT_SUBMITTED: &str = "id77.requests.request.submitted";

pub struct RequestsApi {
    pool: PgPool,
}

impl RequestsApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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

    async fn submit(&self, req: pb::SubmitRequestRequest) -> Result<pb::Request, ServiceError> {
        let s = domain::validate_submission(
            &req.member_id,
            &req.offer_id,
            &req.subject,
            &req.description,
            &req.idempotency_key,
        )?;
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

    async fn get(&self, req: pb::GetRequestRequest) -> Result<pb::Request, ServiceError> {
        let id = Uuid::parse_str(req.id.trim()).map_err(|_| ServiceError::invalid("id", "must be a UUID"))?;
        let row =
            store::get_request(&self.pool, id).await?.ok_or_else(|| ServiceError::not_found("request", &req.id))?;
        self.with_history(row).await
    }

    async fn list(&self, req: pb::ListRequestsRequest) -> Result<pb::ListRequestsResponse, ServiceError> {
        let member_id =
            Uuid::parse_str(req.member_id.trim()).map_err(|_| ServiceError::invalid("member_id", "must be a UUID"))?;
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
        Ok(Response::new(self.submit(request.into_inner()).await?))
    }

    async fn get_request(&self, request: Request<pb::GetRequestRequest>) -> Result<Response<pb::Request>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }
}
