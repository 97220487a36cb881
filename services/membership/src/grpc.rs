//! gRPC transport: maps requests to domain calls and rows to protobuf.

use id77_platform::auth::{Caller, Role};
use id77_platform::{ErrorCode, ServiceError, outbox, page, time};
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::membership_service_server::MembershipService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, MemberStatus, Siren};
use crate::identity::domain::{self as policy, MemberScope, audit};
use crate::identity::keys::LocalAuthenticator;
use crate::identity::store::{self as identity_store, Audit};
use crate::store::{self, CollectivityRow, MemberRow};

pub const SUBJECT_APPLIED: &str = "id77.membership.member.applied";
pub const SUBJECT_APPROVED: &str = "id77.membership.member.approved";
pub const SUBJECT_UPDATED: &str = "id77.membership.member.updated";

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = 100;

/// Directory search, applications and approval. Searching, reading the directory and applying are public;
/// everything else follows docs/authorization.md, from the caller's verified access token.
pub struct MembershipApi {
    pool: PgPool,
    auth: LocalAuthenticator,
}

impl MembershipApi {
    pub fn new(pool: PgPool, auth: LocalAuthenticator) -> Self {
        Self { pool, auth }
    }
}

pub(crate) fn kind_to_proto(kind: &str) -> pb::CollectivityKind {
    match kind {
        "commune" => pb::CollectivityKind::Commune,
        "epci" => pb::CollectivityKind::Epci,
        "syndicat" => pb::CollectivityKind::Syndicat,
        _ => pb::CollectivityKind::Unspecified,
    }
}

fn kind_from_proto(kind: i32) -> Result<Option<&'static str>, ServiceError> {
    match pb::CollectivityKind::try_from(kind) {
        Ok(pb::CollectivityKind::Unspecified) => Ok(None),
        Ok(pb::CollectivityKind::Commune) => Ok(Some("commune")),
        Ok(pb::CollectivityKind::Epci) => Ok(Some("epci")),
        Ok(pb::CollectivityKind::Syndicat) => Ok(Some("syndicat")),
        Err(_) => Err(ServiceError::invalid("kind", "is not a known kind")),
    }
}

fn status_to_proto(status: &str) -> pb::MemberStatus {
    match MemberStatus::parse(status) {
        Some(MemberStatus::Pending) => pb::MemberStatus::Pending,
        Some(MemberStatus::Active) => pb::MemberStatus::Active,
        Some(MemberStatus::Suspended) => pb::MemberStatus::Suspended,
        Some(MemberStatus::Withdrawn) => pb::MemberStatus::Withdrawn,
        None => pb::MemberStatus::Unspecified,
    }
}

fn collectivity_to_proto(c: CollectivityRow) -> pb::Collectivity {
    pb::Collectivity {
        kind: kind_to_proto(&c.kind).into(),
        siren: c.siren,
        name: c.name,
        insee_code: c.insee_code.unwrap_or_default(),
        departement: c.departement,
        population: c.population,
        postal_codes: c.postal_codes,
        epci_siren: c.epci_siren.unwrap_or_default(),
        legal_form: c.legal_form.unwrap_or_default(),
    }
}

pub(crate) fn member_to_proto(m: MemberRow) -> pb::Member {
    pb::Member {
        id: m.id.to_string(),
        kind: kind_to_proto(&m.kind).into(),
        status: status_to_proto(&m.status).into(),
        siren: m.siren,
        name: m.name,
        contact_name: m.contact_name,
        contact_email: m.contact_email,
        applied_at: Some(time::to_proto(m.applied_at)),
        approved_at: time::to_proto_opt(m.approved_at),
        referent_user_id: m.referent_user_id.map(|r| r.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

impl MembershipApi {
    async fn apply(&self, req: pb::ApplyForMembershipRequest) -> Result<pb::Member, ServiceError> {
        let application = domain::validate_application(&req.siren, &req.contact_name, &req.contact_email)?;
        let mut tx = self.pool.begin().await?;
        let siren = application.siren.as_str();
        let collectivity = store::get_collectivity(&mut tx, siren).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NotFound,
                "NOT_IN_DIRECTORY",
                format!("SIREN {siren} is not a collectivité of the directory"),
            )
        })?;
        if let Some(existing) = store::member_by_siren_for_update(&mut tx, siren).await? {
            let status = MemberStatus::parse(&existing.status).unwrap_or(MemberStatus::Active);
            if !status.may_reapply() {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    "ALREADY_MEMBER",
                    format!("{} already has a {} membership ({})", existing.name, existing.status, existing.id),
                ));
            }
        }
        let now = time::now();
        let row = MemberRow {
            id: Uuid::now_v7(),
            siren: collectivity.siren.clone(),
            name: collectivity.name.clone(),
            kind: collectivity.kind.clone(),
            population: collectivity.population,
            status: MemberStatus::Pending.as_str().to_owned(),
            contact_name: application.contact_name,
            contact_email: application.contact_email,
            applied_at: now,
            approved_at: None,
            referent_user_id: None,
        };
        let member = match store::upsert_application(&mut tx, &row).await {
            Ok(member) => member,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    "ALREADY_MEMBER",
                    "a membership already exists",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let event = pb::MemberApplied {
            member_id: member.id.to_string(),
            siren: member.siren.clone(),
            name: member.name.clone(),
            kind: kind_to_proto(&member.kind).into(),
            population: member.population,
            occurred_at: Some(time::to_proto(now)),
        };
        outbox::enqueue(&mut tx, SUBJECT_APPLIED, &event).await?;
        tx.commit().await?;
        tracing::info!(member_id = %member.id, siren = %member.siren, "membership applied");
        Ok(member_to_proto(member))
    }

    async fn approve(&self, caller: &Caller, req: pb::ApproveMembershipRequest) -> Result<pb::Member, ServiceError> {
        caller.require_any(&[Role::Coordinator])?;
        let id = parse_id("member_id", &req.member_id)?;
        let mut tx = self.pool.begin().await?;
        let member = store::member_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("member", &id.to_string()))?;
        let status = MemberStatus::parse(&member.status)
            .ok_or_else(|| ServiceError::internal("reading a member", format!("unknown status {}", member.status)))?;
        let next = status.approve()?;
        let now = time::now();
        let member = store::set_status(&mut tx, id, next.as_str(), Some(now), now).await?;
        let territory = store::territory(&mut tx, id).await?;
        let event = pb::MemberApproved {
            member_id: member.id.to_string(),
            siren: member.siren.clone(),
            name: member.name.clone(),
            kind: kind_to_proto(&member.kind).into(),
            population: member.population,
            occurred_at: Some(time::to_proto(now)),
            insee_code: territory.insee_code,
            epci_siren: territory.epci_siren,
            arrondissement: territory.arrondissement,
        };
        outbox::enqueue(&mut tx, SUBJECT_APPROVED, &event).await?;
        let subject = member.id.to_string();
        let detail = format!("{} ({})", member.name, member.siren);
        let record = Audit {
            kind: audit::MEMBERSHIP_APPROVED,
            actor_user_id: Some(caller.user_id),
            subject: &subject,
            detail: &detail,
            ..Default::default()
        };
        identity_store::audit(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(member_id = %member.id, "membership approved");
        Ok(member_to_proto(member))
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
        let siren = Siren::parse(&req.siren).map_err(|d| ServiceError::invalid("siren", d))?;
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
        let status = match pb::MemberStatus::try_from(req.status) {
            Ok(pb::MemberStatus::Unspecified) => None,
            Ok(pb::MemberStatus::Pending) => Some("pending"),
            Ok(pb::MemberStatus::Active) => Some("active"),
            Ok(pb::MemberStatus::Suspended) => Some("suspended"),
            Ok(pb::MemberStatus::Withdrawn) => Some("withdrawn"),
            Err(_) => return Err(ServiceError::invalid("status", "is not a known status")),
        };
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
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.search(request.into_inner()).await?))
    }

    async fn get_collectivity(
        &self,
        request: Request<pb::GetCollectivityRequest>,
    ) -> Result<Response<pb::Collectivity>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.collectivity(request.into_inner()).await?))
    }

    async fn apply_for_membership(
        &self,
        request: Request<pb::ApplyForMembershipRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.apply(request.into_inner()).await?))
    }

    async fn approve_membership(
        &self,
        request: Request<pb::ApproveMembershipRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.approve(&caller, request.into_inner()).await?))
    }

    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Result<Response<pb::Member>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.member(&caller, request.into_inner()).await?))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.members(&caller, request.into_inner()).await?))
    }
}
