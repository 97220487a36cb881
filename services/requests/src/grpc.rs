//! gRPC transport of the requests service: each call maps its input ([`crate::proto_map`]), runs its flow
//! ([`crate::flow`]) or, for reads, the access rules and the store, and maps the result back.

use id77_platform::auth::{Caller, Role};
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::IDEMPOTENCY_REPLAYED_METADATA as IDEMPOTENCY_REPLAYED;
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::requests_service_server::RequestsService;
use id77_proto::vocabulary::Category;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, RequestFacts};
use crate::domain;
use crate::flow::{commands, submit};
use crate::proto_map::{self, parse_id, timestamp};
use crate::store::{self, Filter, RequestRow};

pub struct RequestsApi {
    pool: PgPool,
}

impl RequestsApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl RequestsApi {
    async fn full(&self, row: RequestRow) -> Result<pb::Request, ServiceError> {
        let history = store::history(&self.pool, row.id).await?;
        let feedback = store::feedback(&self.pool, row.id).await?;
        Ok(proto_map::request_to_proto(row, history, feedback))
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

    async fn submit(
        &self,
        caller: &Caller,
        req: pb::SubmitRequestRequest,
    ) -> Result<Response<pb::Request>, ServiceError> {
        let filed = submit::submit(&self.pool, caller, proto_map::submission(req)).await?;
        let request = match filed.history {
            // A new request has no feedback yet.
            Some(history) => proto_map::request_to_proto(filed.row, history, None),
            None => self.full(filed.row).await?,
        };
        let mut response = Response::new(request);
        if filed.replayed {
            response.metadata_mut().insert(IDEMPOTENCY_REPLAYED, tonic::metadata::MetadataValue::from_static("true"));
        }
        Ok(response)
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
        Ok((scope, filter(req)?))
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
        Ok(proto_map::summary(&rows))
    }

    async fn cancel(&self, caller: &Caller, req: pb::CancelRequestRequest) -> Result<pb::Request, ServiceError> {
        if !caller.has_any(&access::CANCELLERS) {
            return Err(access::Denied::Forbidden.into_error("request", &req.id));
        }
        let id = parse_id("id", &req.id)?;
        let reason = domain::validate_reason(&req.reason)?;
        let row = commands::cancel(&self.pool, caller, id, reason).await?;
        self.full(row).await
    }

    async fn close(&self, caller: &Caller, req: pb::CloseRequestRequest) -> Result<pb::Request, ServiceError> {
        access::coordinate(caller).map_err(|d| d.into_error("request", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let reason = domain::validate_reason(&req.reason)?;
        let row = commands::close(&self.pool, caller, id, reason).await?;
        self.full(row).await
    }

    async fn feedback(&self, caller: &Caller, req: pb::GiveFeedbackRequest) -> Result<pb::Request, ServiceError> {
        if !caller.has_any(&access::SUBMITTERS) {
            return Err(access::Denied::Forbidden.into_error("request", &req.request_id));
        }
        let id = parse_id("request_id", &req.request_id)?;
        let row = commands::feedback(&self.pool, caller, id, req.rating, &req.comment).await?;
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
        Ok(proto_map::statistics(from, to, s))
    }
}

/// The filters of a list or summary.
fn filter(req: &pb::ListRequestsRequest) -> Result<Filter, ServiceError> {
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
        status: proto_map::status_from_proto(req.status)?.map(|s| s.as_str().to_owned()),
        category,
        from: timestamp("submitted_from", req.submitted_from.as_ref())?,
        to: timestamp("submitted_to", req.submitted_to.as_ref())?,
        changed_since: timestamp("updated_since", req.updated_since.as_ref())?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        return Err(ServiceError::invalid("submitted_to", "must not be before submitted_from"));
    }
    Ok(filter)
}

#[tonic::async_trait]
impl RequestsService for RequestsApi {
    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::Request>, Status> {
        let caller = request.caller()?;
        Ok(self.submit(&caller, request.into_inner()).await?)
    }

    async fn get_request(&self, request: Request<pb::GetRequestRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.get(&caller, request.into_inner()).await?))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn summarize_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::RequestSummary>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.summarize(&caller, request.into_inner()).await?))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::Request>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.cancel(&caller, request.into_inner()).await?))
    }

    async fn close_request(&self, request: Request<pb::CloseRequestRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.close(&caller, request.into_inner()).await?))
    }

    async fn give_feedback(&self, request: Request<pb::GiveFeedbackRequest>) -> Result<Response<pb::Request>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.feedback(&caller, request.into_inner()).await?))
    }

    async fn get_request_statistics(
        &self,
        request: Request<pb::RequestStatisticsRequest>,
    ) -> Result<Response<pb::RequestStatistics>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.statistics(&caller, request.into_inner()).await?))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let caller = request.caller()?;
        let p = crate::notify::store::preferences(&self.pool, caller.user_id).await.map_err(ServiceError::from)?;
        Ok(Response::new(proto_map::preferences_to_proto(p)))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<pb::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<pb::NotificationPreferences>, Status> {
        let caller = request.caller()?;
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
        Ok(Response::new(proto_map::preferences_to_proto(p)))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(crate::notify::api::list(&self.pool, &caller, request.into_inner()).await?))
    }

    async fn mark_notifications_read(
        &self,
        request: Request<pb::MarkNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkNotificationsReadResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(crate::notify::api::mark_read(&self.pool, &caller, request.into_inner()).await?))
    }
}
