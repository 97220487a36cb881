//! gRPC transport: checks a call's fields and its caller's role, reads through `store` or runs the use case
//! through `flow`, and answers with `proto_map`'s messages.

use chrono::{DateTime, Utc};
use id77_platform::auth::{Caller, Role};
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::billing::v1 as pb;
use id77_proto::billing::v1::billing_service_server::BillingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, QuoteFacts};
use crate::domain::{self, MemberDecision};
use crate::flow;
use crate::flow::invoices::Marking;
use crate::proto_map::{credit_note_to_proto, invoice_to_proto, quote_to_proto};
use crate::store::{self, QuoteFilter};
use crate::{export, pdf};
use id77_platform::validate::uuid as parse_id;

pub struct BillingApi {
    pool: PgPool,
}

impl BillingApi {
    /// The caller of each call is verified by the server's authentication layer (`request.caller()`).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Longest reason of a credit note.
pub const MAX_REASON_CHARS: usize = 500;

/// Where a page of a list starts: after this document (issued at, id).
type Cursor = (DateTime<Utc>, Uuid);

fn parse_optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    if raw.trim().is_empty() { Ok(None) } else { parse_id(field, raw).map(Some) }
}

/// A list's `updated_since` (unset: no filter).
fn updated_since(ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, ServiceError> {
    ts.map(|ts| {
        id77_platform::time::from_proto(ts).ok_or_else(|| ServiceError::invalid("updated_since", "is not a valid time"))
    })
    .transpose()
}

impl BillingApi {
    /// What a caller's list is confined to (ListQuotes and ListInvoices share `access::list_scope`), and where
    /// its page starts; checked in this order: the role, the ids, the page token, the caller's scope.
    async fn list_filter<'a>(
        &self,
        caller: &'a Caller,
        raw_member_id: &str,
        raw_request_id: &str,
        page_token: &str,
    ) -> Result<(QuoteFilter<'a>, Option<Cursor>), ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("member", raw_member_id))?;
        let member_id = parse_optional_id("member_id", raw_member_id)?;
        let request_id = parse_optional_id("request_id", raw_request_id)?;
        let after = page::decode(page_token)?;
        // The referent relation only matters to a referent: no lookup for anyone else.
        let referent = match member_id {
            Some(member) if caller.has(Role::Referent) => store::referent_of(&self.pool, member).await?,
            _ => None,
        };
        let scope = access::list_scope(caller, member_id, referent)
            .map_err(|d| d.into_error("member", &member_id.map(|m| m.to_string()).unwrap_or_default()))?;
        let filter = QuoteFilter {
            member_id: scope.member_id,
            request_id,
            issuer_code: scope.issuer_code,
            ..Default::default()
        };
        Ok((filter, after))
    }

    /// Whether `caller` reads a document of `member_id` issued by `issuer_code` (`access::read_quote`).
    async fn may_read_document(
        &self,
        caller: &Caller,
        member_id: Uuid,
        issuer_code: &str,
        what: &str,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let referent = if caller.has(Role::Referent) { store::referent_of(&self.pool, member_id).await? } else { None };
        let facts = QuoteFacts { member_id, issuer_code, referent };
        access::read_quote(caller, &facts).map_err(|d| d.into_error(what, &id.to_string()))
    }

    async fn quotes(
        &self,
        caller: &Caller,
        req: pb::ListQuotesRequest,
    ) -> Result<pb::ListQuotesResponse, ServiceError> {
        let (mut filter, after) = self.list_filter(caller, &req.member_id, &req.request_id, &req.page_token).await?;
        filter.updated_since = updated_since(req.updated_since.as_ref())?;
        let limit = page::size(req.page_size);
        let rows = store::list_quotes(&self.pool, filter, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |q| page::encode(&(q.issued_at, q.id)));
        Ok(pb::ListQuotesResponse { quotes: rows.into_iter().map(quote_to_proto).collect(), next_page_token: next })
    }

    async fn quote(&self, caller: &Caller, req: pb::GetQuoteRequest) -> Result<pb::Quote, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("quote", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row =
            store::get_quote(&self.pool, id).await?.ok_or_else(|| ServiceError::not_found("quote", &id.to_string()))?;
        self.may_read_document(caller, row.member_id, &row.issuer_code, "quote", id).await?;
        Ok(quote_to_proto(row))
    }

    async fn invoices(
        &self,
        caller: &Caller,
        req: pb::ListInvoicesRequest,
    ) -> Result<pb::ListInvoicesResponse, ServiceError> {
        let (mut filter, after) = self.list_filter(caller, &req.member_id, &req.request_id, &req.page_token).await?;
        filter.updated_since = updated_since(req.updated_since.as_ref())?;
        let limit = page::size(req.page_size);
        let rows = store::list_invoices(&self.pool, filter, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |i| page::encode(&(i.issued_at, i.id)));
        Ok(pb::ListInvoicesResponse {
            invoices: rows.into_iter().map(invoice_to_proto).collect(),
            next_page_token: next,
        })
    }

    async fn invoice(&self, caller: &Caller, req: pb::GetInvoiceRequest) -> Result<pb::Invoice, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("invoice", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row = store::get_invoice(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("invoice", &id.to_string()))?;
        self.may_read_document(caller, row.member_id, &row.issuer_code, "invoice", id).await?;
        Ok(invoice_to_proto(row))
    }

    async fn credit_note(
        &self,
        caller: &Caller,
        req: pb::IssueCreditNoteRequest,
    ) -> Result<pb::CreditNote, ServiceError> {
        access::may_credit(caller)?;
        let id = parse_id("invoice_id", &req.invoice_id)?;
        let reason = req.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::invalid("reason", "must be 1 to 500 characters"));
        }
        let (note, invoice) = flow::invoices::cancel_invoice(&self.pool, id, reason).await?;
        Ok(credit_note_to_proto(&note, &invoice))
    }
}

/// Longest payment reference.
pub const MAX_PAYMENT_REFERENCE_CHARS: usize = 100;

/// The mark a call asks for, its fields checked: a payment needs its reference.
fn marking(req: &pb::MarkInvoiceRequest) -> Result<Marking<'_>, ServiceError> {
    let mark = match pb::InvoiceMark::try_from(req.mark) {
        Ok(pb::InvoiceMark::Sent) => domain::Mark::Sent,
        Ok(pb::InvoiceMark::Paid) => domain::Mark::Paid,
        _ => return Err(ServiceError::invalid("mark", "must be SENT or PAID")),
    };
    let reference = req.payment_reference.trim();
    if mark == domain::Mark::Paid && (reference.is_empty() || reference.chars().count() > MAX_PAYMENT_REFERENCE_CHARS) {
        return Err(ServiceError::invalid("payment_reference", "must be 1 to 100 characters to mark paid"));
    }
    Ok(Marking { mark, date: &req.date, payment_reference: reference })
}

impl BillingApi {
    /// Marks an invoice sent or paid (`flow::invoices::mark`): the coordinator, or an agent of the issuing
    /// provider.
    async fn mark_invoice(&self, caller: &Caller, req: pb::MarkInvoiceRequest) -> Result<pb::Invoice, ServiceError> {
        access::may_mark(caller)?;
        let id = parse_id("id", &req.id)?;
        let marking = marking(&req)?;
        let row = flow::invoices::mark(&self.pool, caller, id, marking).await?;
        Ok(invoice_to_proto(row))
    }

    /// AcceptQuote and RefuseQuote: a member admin of the quote's member answers a proposed quote
    /// (`flow::quotes::decide`).
    async fn decide_quote(
        &self,
        caller: &Caller,
        raw_id: &str,
        decision: Result<MemberDecision, ServiceError>,
    ) -> Result<pb::Quote, ServiceError> {
        access::may_decide(caller).map_err(|d| d.into_error("quote", raw_id))?;
        let id = parse_id("id", raw_id)?;
        let decision = decision?;
        let row = flow::quotes::decide(&self.pool, caller, id, &decision).await?;
        Ok(quote_to_proto(row))
    }
}

/// The acceptance's fields, checked (every invalid field named at once).
fn acceptance(req: &pb::AcceptQuoteRequest) -> Result<MemberDecision, ServiceError> {
    let signatory = domain::signatory_name(&req.signatory_name);
    let order = domain::purchase_order_number(&req.purchase_order_number);
    match (signatory, order) {
        (Ok(signatory_name), Ok(purchase_order_number)) => {
            Ok(MemberDecision::Accept { signatory_name, purchase_order_number })
        }
        (signatory, order) => {
            let mut violations = Vec::new();
            if let Err(e) = signatory {
                violations.push(id77_platform::error::FieldViolation {
                    field: "signatory_name".into(),
                    description: e.into(),
                });
            }
            if let Err(e) = order {
                violations.push(id77_platform::error::FieldViolation {
                    field: "purchase_order_number".into(),
                    description: e.into(),
                });
            }
            Err(ServiceError::invalid_fields(violations))
        }
    }
}

fn refusal(req: &pb::RefuseQuoteRequest) -> Result<MemberDecision, ServiceError> {
    domain::refusal_reason(&req.reason)
        .map(|reason| MemberDecision::Refuse { reason })
        .map_err(|e| ServiceError::invalid("reason", e))
}

/// A file answer.
fn file(content_type: &str, filename: String, content: Vec<u8>) -> pb::ExportInvoiceResponse {
    pb::ExportInvoiceResponse { content_type: content_type.to_owned(), filename, content }
}

const XML: &str = "application/xml";
const CSV: &str = "text/csv; charset=utf-8";
const PDF: &str = "application/pdf";

impl BillingApi {
    async fn export_invoice(
        &self,
        caller: &Caller,
        req: pb::ExportInvoiceRequest,
    ) -> Result<pb::ExportInvoiceResponse, ServiceError> {
        let format = pb::ExportFormat::try_from(req.format).unwrap_or(pb::ExportFormat::Unspecified);
        if format == pb::ExportFormat::Unspecified {
            return Err(ServiceError::invalid("format", "must be CII_XML, UBL_XML, CSV or PDF"));
        }
        let i = self.invoice(caller, pb::GetInvoiceRequest { id: req.id }).await?;
        let n = &i.number;
        Ok(match format {
            pb::ExportFormat::Csv => {
                file(CSV, format!("{n}.csv"), export::invoices_csv(std::slice::from_ref(&i)).into())
            }
            pb::ExportFormat::UblXml => file(XML, format!("{n}.ubl.xml"), export::invoice_ubl(&i).into()),
            pb::ExportFormat::Pdf => file(PDF, format!("{n}.pdf"), pdf::invoice_pdf(&i)),
            _ => file(XML, format!("{n}.xml"), export::invoice_xml(&i).into()),
        })
    }

    /// A credit note, seen by whoever sees the invoice it cancels.
    async fn credit_note_of(&self, caller: &Caller, id: &str) -> Result<pb::CreditNote, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("credit note", id))?;
        let id = parse_id("id", id)?;
        let missing = || ServiceError::not_found("credit note", &id.to_string());
        let note = store::get_credit_note(&self.pool, id).await?.ok_or_else(missing)?;
        let invoice = store::get_invoice(&self.pool, note.invoice_id).await?.ok_or_else(missing)?;
        self.may_read_document(caller, invoice.member_id, &invoice.issuer_code, "credit note", id).await?;
        Ok(credit_note_to_proto(&note, &invoice))
    }

    async fn export_credit_note(
        &self,
        caller: &Caller,
        req: pb::ExportCreditNoteRequest,
    ) -> Result<pb::ExportInvoiceResponse, ServiceError> {
        let format = pb::ExportFormat::try_from(req.format).unwrap_or(pb::ExportFormat::Unspecified);
        if format == pb::ExportFormat::Unspecified {
            return Err(ServiceError::invalid("format", "must be CII_XML, UBL_XML, CSV or PDF"));
        }
        let c = self.credit_note_of(caller, &req.id).await?;
        let n = &c.number;
        Ok(match format {
            pb::ExportFormat::Csv => {
                file(CSV, format!("{n}.csv"), export::credit_notes_csv(std::slice::from_ref(&c)).into())
            }
            pb::ExportFormat::UblXml => file(XML, format!("{n}.ubl.xml"), export::credit_note_ubl(&c).into()),
            pb::ExportFormat::Pdf => file(PDF, format!("{n}.pdf"), pdf::credit_note_pdf(&c)),
            _ => file(XML, format!("{n}.xml"), export::credit_note_xml(&c).into()),
        })
    }

    async fn export_quote(
        &self,
        caller: &Caller,
        req: pb::ExportQuoteRequest,
    ) -> Result<pb::ExportInvoiceResponse, ServiceError> {
        if pb::ExportFormat::try_from(req.format) != Ok(pb::ExportFormat::Pdf) {
            return Err(ServiceError::invalid("format", "a quote exports as PDF only"));
        }
        let q = self.quote(caller, pb::GetQuoteRequest { id: req.id }).await?;
        Ok(file(PDF, format!("{}.pdf", q.number), pdf::quote_pdf(&q)))
    }
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn accept_quote(&self, request: Request<pb::AcceptQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        Ok(Response::new(self.decide_quote(&caller, &req.id, acceptance(&req)).await?))
    }

    async fn refuse_quote(&self, request: Request<pb::RefuseQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        Ok(Response::new(self.decide_quote(&caller, &req.id, refusal(&req)).await?))
    }

    async fn mark_invoice(&self, request: Request<pb::MarkInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(BillingApi::mark_invoice(self, &caller, request.into_inner()).await?))
    }

    async fn get_credit_note(
        &self,
        request: Request<pb::GetCreditNoteRequest>,
    ) -> Result<Response<pb::CreditNote>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.credit_note_of(&caller, &request.into_inner().id).await?))
    }

    async fn export_credit_note(
        &self,
        request: Request<pb::ExportCreditNoteRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(BillingApi::export_credit_note(self, &caller, request.into_inner()).await?))
    }

    async fn export_quote(
        &self,
        request: Request<pb::ExportQuoteRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(BillingApi::export_quote(self, &caller, request.into_inner()).await?))
    }

    async fn export_invoice(
        &self,
        request: Request<pb::ExportInvoiceRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(BillingApi::export_invoice(self, &caller, request.into_inner()).await?))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.invoices(&caller, request.into_inner()).await?))
    }

    async fn get_invoice(&self, request: Request<pb::GetInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.invoice(&caller, request.into_inner()).await?))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Result<Response<pb::CreditNote>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.credit_note(&caller, request.into_inner()).await?))
    }

    async fn list_quotes(
        &self,
        request: Request<pb::ListQuotesRequest>,
    ) -> Result<Response<pb::ListQuotesResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.quotes(&caller, request.into_inner()).await?))
    }

    async fn get_quote(&self, request: Request<pb::GetQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.quote(&caller, request.into_inner()).await?))
    }
}
