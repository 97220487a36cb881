//! `MembershipService`: directory search, applications and approval. Handlers map the request, call the flow
//! (or read the store) and map the answer.

use id77_platform::auth::{Caller, Role};
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::membership_service_server::MembershipService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::{self, MemberStatus, Siren};
use crate::flow;
use crate::identity::domain::{self as policy, MemberScope};
use crate::mapping::{collectivity_to_proto, kind_from_proto, member_to_proto, parse_id, status_from_proto};
use crate::store;

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = 100;

/// Directory search, applications and approval. Searching, reading the directory and applying are public;
/// everything else follows docs/authorization.md, from the caller's verified access token.
pub struct MembershipApi {
    pool: PgPool,
}

impl MembershipApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn apply(&self, req: pb::ApplyForMembershipRequest) -> Result<pb::Member, ServiceError> {
        let application = domain::validate_application(&req.siren, &req.contact_name, &req.contact_email)?;
        flow::apply(&self.pool, application).await.map(member_to_proto)
    }

    async fn approve(&self, caller: &Caller, req: pb::ApproveMembershipRequest) -> Result<pb::Member, ServiceError> {
        caller.require_any(&[Role::Coordinator])?;
        let id = parse_id("member_id", &req.member_id)?;
        flow::approve(&self.pool, caller, id).await.map(member_to_proto)
    }

    async fn refuse(&self, caller: &Caller, req: pb::RefuseMembershipRequest) -> Result<pb::Member, ServiceError> {
        caller.require_any(&[Role::Coordinator])?;
        let id = parse_id("member_id", &req.member_id)?;
        let reason = crate::domain::refusal_reason(&req.reason)?;
        flow::refuse(&self.pool, caller, id, &reason).await.map(member_to_proto)
    }

    async fn search(
        &self,
        req: pb::SearchCollectivitiesRequest,
    ) -> Result<pb::SearchCollectivitiesResponse, ServiceError> {
        if req.query.chars().count() > MAX_QUERY_CHARS {
            return Err(ServiceError::invalid("query", "must be at most 100 characters"));
        }
        let kind = kind_from_proto(req.kind)?;
        let after: Option<(i32, String, String)> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::search_collectivities(&self.pool, &domain::fold(&req.query), kind, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |(rank, c)| page::encode(&(rank, &c.search_name, &c.siren)));
        Ok(pb::SearchCollectivitiesResponse {
            collectivities: rows.into_iter().map(|(_, c)| collectivity_to_proto(c)).collect(),
            next_page_token: next,
        })
    }

    async fn collectivity(&self, req: pb::GetCollectivityRequest) -> Result<pb::Collectivity, ServiceError> {
        let siren = match Siren::parse(&req.siren) {
            Ok(siren) => siren,
            // A wrong check digit names no collectivité: not found, like any SIREN outside the directory.
            Err(crate::domain::CHECK_DIGIT) => {
                return Err(ServiceError::not_found(
                    "collectivity",
                    &format!("{} (wrong check digit)", req.siren.trim()),
                ));
            }
            Err(description) => return Err(ServiceError::invalid("siren", description)),
        };
        let mut conn = self.pool.acquire().await?;
        store::get_collectivity(&mut conn, siren.as_str())
            .await?
            .map(collectivity_to_proto)
            .ok_or_else(|| ServiceError::not_found("collectivity", siren.as_str()))
    }

    async fn member(&self, caller: &Caller, req: pb::GetMemberRequest) -> Result<pb::Member, ServiceError> {
        policy::may_read_members(caller)?;
        let id = parse_id("member_id", &req.member_id)?;
        store::get_member(&self.pool, id)
            .await?
            .filter(|m| policy::sees_member(caller, m.id, m.referent_user_id))
            .map(member_to_proto)
            .ok_or_else(|| ServiceError::not_found("member", &id.to_string()))
    }

    async fn members(
        &self,
        caller: &Caller,
        req: pb::ListMembersRequest,
    ) -> Result<pb::ListMembersResponse, ServiceError> {
        let referent = match policy::authorize_list_members(caller)? {
            MemberScope::All => None,
            MemberScope::FollowedBy(referent) => Some(referent),
        };
        let status = status_from_proto(req.status)?.map(MemberStatus::as_str);
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_members(&self.pool, status, referent, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |m| page::encode(&(m.applied_at, m.id)));
        Ok(pb::ListMembersResponse { members: rows.into_iter().map(member_to_proto).collect(), next_page_token: next })
    }
}

#[tonic::async_trait]
impl MembershipService for MembershipApi {
    async fn search_collectivities(
        &self,
        request: Request<pb::SearchCollectivitiesRequest>,
    ) -> Result<Response<pb::SearchCollectivitiesResponse>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.search(request.into_inner()).await?))
    }

    async fn get_collectivity(
        &self,
        request: Request<pb::GetCollectivityRequest>,
    ) -> Result<Response<pb::Collectivity>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.collectivity(request.into_inner()).await?))
    }

    async fn apply_for_membership(
        &self,
        request: Request<pb::ApplyForMembershipRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.apply(request.into_inner()).await?))
    }

    async fn approve_membership(
        &self,
        request: Request<pb::ApproveMembershipRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.approve(&caller, request.into_inner()).await?))
    }

    async fn refuse_membership(
        &self,
        request: Request<pb::RefuseMembershipRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.refuse(&caller, request.into_inner()).await?))
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Result<Response<pb::Member>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.member(&caller, request.into_inner()).await?))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.members(&caller, request.into_inner()).await?))
    }
}
