//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::auth::{Authenticator, Caller, Role};
use id77_platform::{ErrorCode, ServiceError, page, time};
use id77_proto::billing::v1 as pb;
use id77_proto::billing::v1::billing_service_server::BillingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access::{self, QuoteFacts};
use crate::domain::QuoteStatus;
use crate::parties::Party;
use crate::quotes::{self, Actor, DecisionError, MemberDecision};
use crate::store::{self, CreditNoteRow, InvoiceRow, QuoteFilter, QuoteRow};
use crate::{domain, export, invoices, pdf};

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

/// A quote's status on the wire: proposed is `ISSUED` (kept for compatibility).
pub fn status_to_proto(status: &str) -> pb::QuoteStatus {
    match QuoteStatus::parse(status) {
        Some(QuoteStatus::Proposed) => pb::QuoteStatus::Issued,
        Some(QuoteStatus::Accepted) => pb::QuoteStatus::Accepted,
        Some(QuoteStatus::Refused) => pb::QuoteStatus::Refused,
        Some(QuoteStatus::Voided) => pb::QuoteStatus::Voided,
        Some(QuoteStatus::Expired) => pb::QuoteStatus::Expired,
        None => pb::QuoteStatus::Unspecified,
    }
}

pub fn party_to_proto(p: &Party) -> pb::Party {
    pb::Party {
        name: p.name.clone(),
        trading_name: p.trading_name.clone(),
        siren: p.siren.clone(),
        siret: p.siret.clone(),
        vat_id: p.vat_id.clone(),
        address_line: p.address_line.clone(),
        postcode: p.postcode.clone(),
        city: p.city.clone(),
        country_code: p.country_code.clone(),
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
        seller: Some(party_to_proto(&q.seller)),
        buyer: Some(party_to_proto(&q.buyer)),
        decided_at: time::to_proto_opt(q.decided_at),
        decided_by_user_id: q.decided_by_user_id.map(|u| u.to_string()).unwrap_or_default(),
        decided_by_name: q.decided_by_name,
        signatory_name: q.signatory_name,
        purchase_order_number: q.purchase_order_number,
        decision_reason: q.decision_reason,
        expires_at: Some(time::to_proto(q.expires_at)),
    }
}

fn invoice_status_to_proto(status: &str) -> pb::InvoiceStatus {
    match status {
        "issued" => pb::InvoiceStatus::Issued,
        "sent" => pb::InvoiceStatus::Sent,
        "paid" => pb::InvoiceStatus::Paid,
        "cancelled" => pb::InvoiceStatus::Cancelled,
        _ => pb::InvoiceStatus::Unspecified,
    }
}

fn line_of(i: &InvoiceRow) -> pb::InvoiceLine {
    pb::InvoiceLine {
        label: i.label.clone(),
        quantity: i.quantity,
        unit_price_cents: i.unit_price_cents,
        net_cents: i.net_cents,
    }
}

pub fn invoice_to_proto(i: InvoiceRow) -> pb::Invoice {
    pb::Invoice {
        seller: Some(party_to_proto(&i.seller)),
        buyer: Some(party_to_proto(&i.buyer)),
        sent_on: i.sent_on.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        paid_on: i.paid_on.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        payment_reference: i.payment_reference.clone(),
        id: i.id.to_string(),
        status: invoice_status_to_proto(&i.status).into(),
        lines: vec![line_of(&i)],
        number: i.number,
        issuer_code: i.issuer_code,
        year: i.year,
        sequence: i.sequence,
        member_id: i.member_id.to_string(),
        buyer_siren: i.buyer_siren,
        request_id: i.request_id.to_string(),
        referral_id: i.referral_id.to_string(),
        offer_id: i.offer_id.to_string(),
        offer_version: i.offer_version,
        total_net_cents: i.net_cents,
        total_vat_cents: i.vat_cents,
        total_gross_cents: i.gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: i.vat_note,
        currency: i.currency,
        issued_at: Some(time::to_proto(i.issued_at)),
        due_date: i.due_date.format("%Y-%m-%d").to_string(),
        credit_note_id: i.credit_note_id.map(|id| id.to_string()).unwrap_or_default(),
        quote_id: i.quote_id.map(|id| id.to_string()).unwrap_or_default(),
        quote_number: i.quote_number,
        purchase_order_number: i.purchase_order_number,
    }
}

/// A credit note carries the lines and totals of the invoice it cancels.
pub fn credit_note_to_proto(c: &CreditNoteRow, i: &InvoiceRow) -> pb::CreditNote {
    pb::CreditNote {
        id: c.id.to_string(),
        number: c.number.clone(),
        issuer_code: c.issuer_code.clone(),
        year: c.year,
        sequence: c.sequence,
        invoice_id: i.id.to_string(),
        invoice_number: i.number.clone(),
        member_id: i.member_id.to_string(),
        buyer_siren: i.buyer_siren.clone(),
        lines: vec![line_of(i)],
        total_net_cents: i.net_cents,
        total_vat_cents: i.vat_cents,
        total_gross_cents: i.gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: i.vat_note.clone(),
        currency: i.currency.clone(),
        reason: c.reason.clone(),
        issued_at: Some(time::to_proto(c.issued_at)),
        seller: Some(party_to_proto(&i.seller)),
        buyer: Some(party_to_proto(&i.buyer)),
    }
}

/// Longest reason of a credit note.
pub const MAX_REASON_CHARS: usize = 500;

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

impl BillingApi {
    async fn invoices(
        &self,
        caller: &Caller,
        req: pb::ListInvoicesRequest,
    ) -> Result<pb::ListInvoicesResponse, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("member", &req.member_id))?;
        let member_id = parse_optional_id("member_id", &req.member_id)?;
        let request_id = parse_optional_id("request_id", &req.request_id)?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let referent = match member_id {
            Some(member) if caller.has(Role::Referent) => store::referent_of(&self.pool, member).await?,
            _ => None,
        };
        let scope = access::list_scope(caller, member_id, referent)
            .map_err(|d| d.into_error("member", &member_id.map(|m| m.to_string()).unwrap_or_default()))?;
        let filter = QuoteFilter { member_id: scope.member_id, request_id, issuer_code: scope.issuer_code };
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
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, row.member_id).await? } else { None };
        let facts = QuoteFacts { member_id: row.member_id, issuer_code: &row.issuer_code, referent };
        access::read_quote(caller, &facts).map_err(|d| d.into_error("invoice", &id.to_string()))?;
        Ok(invoice_to_proto(row))
    }

    async fn credit_note(
        &self,
        caller: &Caller,
        req: pb::IssueCreditNoteRequest,
    ) -> Result<pb::CreditNote, ServiceError> {
        if !caller.has(Role::Coordinator) {
            return Err(ServiceError::new(
                ErrorCode::PermissionDenied,
                "COORDINATOR_ONLY",
                "only the coordinator issues credit notes",
            ));
        }
        let id = parse_id("invoice_id", &req.invoice_id)?;
        let reason = req.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::invalid("reason", "must be 1 to 500 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let invoice = store::invoice_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("invoice", &id.to_string()))?;
        if invoice.status == "cancelled" {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "INVOICE_CANCELLED",
                format!("invoice {} is already cancelled by a credit note", invoice.number),
            ));
        }
        let (note, invoice) = invoices::credit(&mut tx, invoice, reason, time::now()).await?;
        tx.commit().await?;
        tracing::info!(credit_note = %note.number, invoice = %invoice.number, "credit note issued");
        Ok(credit_note_to_proto(&note, &invoice))
    }
}

/// Longest payment reference.
pub const MAX_PAYMENT_REFERENCE_CHARS: usize = 100;

impl BillingApi {
    /// Marks an invoice sent or paid: the coordinator, or an agent of the issuing provider (another provider's
    /// invoice is "not found" to it); the state machine is `domain::mark`.
    async fn mark_invoice(&self, caller: &Caller, req: pb::MarkInvoiceRequest) -> Result<pb::Invoice, ServiceError> {
        if !caller.has_any(&[Role::Coordinator, Role::ProviderAgent]) {
            return Err(ServiceError::new(
                ErrorCode::PermissionDenied,
                "COORDINATOR_OR_ISSUER_ONLY",
                "only the coordinator or the issuing provider marks an invoice sent or paid",
            ));
        }
        let id = parse_id("id", &req.id)?;
        let mark = match pb::InvoiceMark::try_from(req.mark) {
            Ok(pb::InvoiceMark::Sent) => domain::Mark::Sent,
            Ok(pb::InvoiceMark::Paid) => domain::Mark::Paid,
            _ => return Err(ServiceError::invalid("mark", "must be SENT or PAID")),
        };
        let reference = req.payment_reference.trim();
        if mark == domain::Mark::Paid
            && (reference.is_empty() || reference.chars().count() > MAX_PAYMENT_REFERENCE_CHARS)
        {
            return Err(ServiceError::invalid("payment_reference", "must be 1 to 100 characters to mark paid"));
        }
        let mut tx = self.pool.begin().await?;
        let invoice = store::invoice_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("invoice", &id.to_string()))?;
        if !caller.has(Role::Coordinator) && !caller.is_agent_of(&invoice.issuer_code) {
            return Err(ServiceError::not_found("invoice", &id.to_string()));
        }
        let now = time::now();
        let date = domain::mark_date(&req.date, domain::french_date(invoice.issued_at), domain::french_date(now))
            .map_err(|reason| ServiceError::invalid("date", reason))?;
        let status = domain::mark(&invoice.status, mark).map_err(|reason| {
            ServiceError::new(
                ErrorCode::FailedPrecondition,
                "INVOICE_STATUS",
                format!("invoice {}: {reason}", invoice.number),
            )
        })?;
        let (sent_on, paid_on, reference) = match mark {
            domain::Mark::Sent => (Some(date), None, ""),
            domain::Mark::Paid => (None, Some(date), reference),
        };
        let row = store::mark_invoice(&mut tx, id, status, sent_on, paid_on, reference).await?;
        let invoice = invoice_to_proto(row);
        // Announced in the same transaction (outbox).
        match mark {
            domain::Mark::Sent => {
                let event = pb::InvoiceSent { invoice: Some(invoice.clone()) };
                id77_platform::outbox::enqueue(&mut tx, crate::invoices::SUBJECT_INVOICE_SENT, &event).await?;
            }
            domain::Mark::Paid => {
                let event = pb::InvoicePaid { invoice: Some(invoice.clone()) };
                id77_platform::outbox::enqueue(&mut tx, crate::invoices::SUBJECT_INVOICE_PAID, &event).await?;
            }
        }
        tx.commit().await?;
        tracing::info!(invoice = %invoice.number, status, "invoice marked");
        Ok(invoice)
    }
}

impl BillingApi {
    /// AcceptQuote and RefuseQuote: a member admin of the quote's member answers a proposed quote. The row is
    /// locked, so an acceptance and a void (the request's cancellation) or an expiry happen one after the
    /// other; the loser gets INVALID_TRANSITION. Announced through the outbox in the same transaction.
    async fn decide_quote(
        &self,
        caller: &Caller,
        raw_id: &str,
        decision: Result<MemberDecision, ServiceError>,
    ) -> Result<pb::Quote, ServiceError> {
        access::may_decide(caller).map_err(|d| d.into_error("quote", raw_id))?;
        let id = parse_id("id", raw_id)?;
        let decision = decision?;
        let mut tx = self.pool.begin().await?;
        let quote = store::quote_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("quote", &id.to_string()))?;
        access::decide_quote(caller, quote.member_id).map_err(|d| d.into_error("quote", &id.to_string()))?;
        let number = quote.number.clone();
        let actor = Actor {
            user_id: Some(caller.user_id),
            role: Role::MemberAdmin.as_str().to_owned(),
            name: caller.display_name().to_owned(),
        };
        let row = quotes::decide(&mut tx, quote, &decision, &actor, time::now()).await.map_err(|e| match e {
            DecisionError::Transition(t) => ServiceError::new(
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                format!("quote {number} {}", t.from.explain()),
            ),
            DecisionError::AmountNotStated => ServiceError::new(
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                format!("quote {number} has no amount yet: the provider must state it before it can be accepted"),
            ),
            DecisionError::Db(e) => ServiceError::from(e),
        })?;
        tx.commit().await?;
        tracing::info!(quote = %row.number, status = %row.status, user_id = %caller.user_id, "quote decided");
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
        let referent =
            if caller.has(Role::Referent) { store::referent_of(&self.pool, invoice.member_id).await? } else { None };
        let facts = QuoteFacts { member_id: invoice.member_id, issuer_code: &invoice.issuer_code, referent };
        access::read_quote(caller, &facts).map_err(|d| d.into_error("credit note", &id.to_string()))?;
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
        let caller = self.auth.caller(&request).await?;
        let req = request.into_inner();
        Ok(Response::new(self.decide_quote(&caller, &req.id, acceptance(&req)).await?))
    }

    async fn refuse_quote(&self, request: Request<pb::RefuseQuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let caller = self.auth.caller(&request).await?;
        let req = request.into_inner();
        Ok(Response::new(self.decide_quote(&caller, &req.id, refusal(&req)).await?))
    }

    async fn mark_invoice(&self, request: Request<pb::MarkInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(BillingApi::mark_invoice(self, &caller, request.into_inner()).await?))
    }

    async fn get_credit_note(
        &self,
        request: Request<pb::GetCreditNoteRequest>,
    ) -> Result<Response<pb::CreditNote>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.credit_note_of(&caller, &request.into_inner().id).await?))
    }

    async fn export_credit_note(
        &self,
        request: Request<pb::ExportCreditNoteRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(BillingApi::export_credit_note(self, &caller, request.into_inner()).await?))
    }

    async fn export_quote(
        &self,
        request: Request<pb::ExportQuoteRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(BillingApi::export_quote(self, &caller, request.into_inner()).await?))
    }

    async fn export_invoice(
        &self,
        request: Request<pb::ExportInvoiceRequest>,
    ) -> Result<Response<pb::ExportInvoiceResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(BillingApi::export_invoice(self, &caller, request.into_inner()).await?))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.invoices(&caller, request.into_inner()).await?))
    }

    async fn get_invoice(&self, request: Request<pb::GetInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.invoice(&caller, request.into_inner()).await?))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Result<Response<pb::CreditNote>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.credit_note(&caller, request.into_inner()).await?))
    }

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
