//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::{ServiceError, page, time};
use id77_proto::billing::v1 as pb;
use id77_proto::billing::v1::billing_service_server::BillingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::store::{self, QuoteRow};

pub struct BillingApi {
    pool: PgPool,
}

impl BillingApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

fn parse_optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    if raw.trim().is_empty() { Ok(None) } else { parse_id(field, raw).map(Some) }
}

impl BillingApi {
    async fn quotes(&self, req: pb::ListQuotesRequest) -> Result<pb::ListQuotesResponse, ServiceError> {
        let member_id = parse_optional_id("member_id", &req.member_id)?;
        let request_id = parse_optional_id("request_id", &req.request_id)?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_quotes(&self.pool, member_id, request_id, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |q| page::encode(&(q.issued_at, q.id)));
        Ok(pb::ListQuotesResponse { quotes: rows.into_iter().map(quote_to_proto).collect(), next_page_token: next })
    }

    async fn quote(&self, req: pb::GetQuoteRequest) -> Result<pb::Quote, ServiceError> {
        let id = parse_id("id", &req.id)?;
        store::get_quote(&self.pool, id)
            .await?
            .map(quote_to_proto)
            .ok_or_else(|| ServiceError::not_found("quote", &id.to_string()))
    }
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn list_quotes(
        &self,
        request: Request<pb::ListQuotesRequest>,
    ) -> Result<Response<pb::ListQuotesResponse>, Status> {
        Ok(Response::new(self.quotes(request.into_inner()).await?))
    }

    async fn get_quote(&self, request: Request<pb::GetQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        Ok(Response::new(self.quote(request.into_inner()).await?))
    }
}
