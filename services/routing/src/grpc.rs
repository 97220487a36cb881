//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::auth::{Authenticator, Caller};
use id77_platform::streams::is_valid_subject_token;
use id77_platform::{ServiceError, page, time};
use id77_proto::routing::v1 as pb;
use id77_proto::routing::v1::routing_service_server::RoutingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access;
use crate::domain::ReferralStatus;
use crate::store::{self, ReferralRow};

pub struct RoutingApi {
    pool: PgPool,
    /// Verifies the caller's access token (forwarded by the gateway) on every call.
    auth: Authenticator,
}

impl RoutingApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth }
    }
}

fn status_to_proto(status: &str) -> pb::ReferralStatus {
    match ReferralStatus::parse(status) {
        Some(ReferralStatus::Offered) => pb::ReferralStatus::Offered,
        Some(ReferralStatus::Accepted) => pb::ReferralStatus::Accepted,
        Some(ReferralStatus::Declined) => pb::ReferralStatus::Declined,
        Some(ReferralStatus::Expired) => pb::ReferralStatus::Expired,
        Some(ReferralStatus::Withdrawn) => pb::ReferralStatus::Withdrawn,
        None => pb::ReferralStatus::Unspecified,
    }
}

fn referral_to_proto(r: ReferralRow) -> pb::Referral {
    pb::Referral {
        id: r.id.to_string(),
        request_id: r.request_id.to_string(),
        offer_id: r.offer_id.to_string(),
        member_id: r.member_id.to_string(),
        status: status_to_proto(&r.status).into(),
        provider_code: r.provider_code,
        reason: r.reason,
        assignment: r.assignment,
        offered_at: Some(time::to_proto(r.offered_at)),
        decided_at: time::to_proto_opt(r.decided_at),
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

impl RoutingApi {
    async fn referral(&self, caller: &Caller, req: pb::GetReferralRequest) -> Result<pb::Referral, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("referral", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row = store::get_referral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        access::read_referral(caller, &row.provider_code).map_err(|d| d.into_error("referral", &id.to_string()))?;
        Ok(referral_to_proto(row))
    }

    async fn referrals(
        &self,
        caller: &Caller,
        req: pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("provider", &req.provider_code))?;
        let request_id = match req.request_id.trim() {
            "" => None,
            raw => Some(parse_id("request_id", raw)?),
        };
        let provider_code = match req.provider_code.as_str() {
            "" => None,
            code if is_valid_subject_token(code) => Some(code),
            _ => return Err(ServiceError::invalid("provider_code", "is not a provider code")),
        };
        // An agent lists only its own provider's referrals.
        let provider_code = access::list_provider(caller, provider_code)
            .map_err(|d| d.into_error("provider", provider_code.unwrap_or_default()))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_referrals(&self.pool, request_id, provider_code, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.offered_at, r.id)));
        Ok(pb::ListReferralsResponse {
            referrals: rows.into_iter().map(referral_to_proto).collect(),
            next_page_token: next,
        })
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn get_referral(&self, request: Request<pb::GetReferralRequest>) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.referral(&caller, request.into_inner()).await?))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.referrals(&caller, request.into_inner()).await?))
    }
}
