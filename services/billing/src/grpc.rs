//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::auth::{Authenticator, Caller, Role};
use id77_platform::{ServiceError, page, time};
use id77_proto::billing::v1 as pb;
use id77_proto::billing::v1::billing_service_server::BillingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, QuoteFacts};
use crate::store::{self, QuoteFilter, QuoteRow};

pub struct BillingApi {
    pool: PgPool,
    /// Verifies the caller's access token (forwarded by the gateway) on every call.
    auth: Authenticator,
}

impl BillingApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth }
    }
}

fn status_to_proto(status: &str) -> pb::QuoteStatus {
    match status {
        "issued" => pb::QuoteStatus::Issued,
        _ => pb::QuoteStatus::Unspecified,
    }
}

pub fn quote_to_proto(q: QuoteRow) -> pb::Quote {
    pb::Quote {
        id: q.id.to_string(),
        status: status_to_proto(&q.status).into(),
        number: q.number,
        issuer_code: q.issuer_code,
        year: q.year,
        sequence: q.sequence,
        member_id: q.member_id.to_string(),
        request_id: q.request_id.to_string(),
        referral_id: q.referral_id.to_string(),
        offer_id: q.offer_id.to_string(),
        label: q.label,
        amount_cents: q.amount_cents,
        currency: q.currency,
        issued_at: Some(time::to_proto(q.issued_at)),
        amount_to_be_stated: q.amount_to_be_stated,
        vat_rate_bp: q.vat_rate_bp,
        vat_note: q.vat_note,
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

fn parse_optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    if raw.trim().is_empty() { Ok(None) } else { parse_id(field, raw).map(Some) }
}

impl BillingApi {
    async fn quotes(
        &self,
        caller: &Caller,
        req: pb::ListQuotesRequest,
    ) -> Result<pb::ListQuotesResponse, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("member", &req.member_id))?;
        let member_id = parse_optional_id("member_id", &req.member_id)?;
        let request_id = parse_optional_id("request_id", &req.request_id)?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        // The referent relation only matters to a referent: no lookup for anyone else.
        let referent = match member_id {
            Some(member) if caller.has(Role::Referent) => store::referent_of(&self.pool, member).await?,
            _ => None,
        };
        let scope = access::list_scope(caller, member_id, referent)
            .map_err(|d| d.into_error("member", &member_id.map(|m| m.to_string()).unwrap_or_default()))?;
        let filter = QuoteFilter { member_id: scope.member_id, request_id, issuer_code: scope.issuer_code };
        let rows = store::list_quotes(&self.pool, filter, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |q| page::encode(&(q.issued_at, q.id)));
        Ok(pb::ListQuotesResponse { quotes: rows.into_iter().map(quote_to_proto).collect(), next_page_token: next })
    }

    async fn quote(&self, caller: &Caller, req: pb::GetQuoteRequest) -> Result<pb::Quote, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("quote", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row =
            store::get_quote(&self.pool, id).await?.ok_or_else(|| ServiceError::not_found("quote", &id.to_string()))?;
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, row.member_id).await? } else { None };
        let facts = QuoteFacts { member_id: row.member_id, issuer_code: &row.issuer_code, referent };
        access::read_quote(caller, &facts).map_err(|d| d.into_error("quote", &id.to_string()))?;
        Ok(quote_to_proto(row))
    }
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn list_quotes(
        &self,
        request: Request<pb::ListQuotesRequest>,
    ) -> Result<Response<pb::ListQuotesResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.quotes(&caller, request.into_inner()).await?))
    }

    async fn get_quote(&self, request: Request<pb::GetQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.quote(&caller, request.into_inner()).await?))
    }
}
