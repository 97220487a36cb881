//! `/v1/quotes` and `/v1/invoices`: a member's users see their member's; a provider's agents those it issued; referents those of
//! the members they follow; the coordinator all. A member admin accepts or refuses a proposed quote (ADR 0013).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use id77_platform::auth::Role;
use id77_proto::billing::v1 as pb;
use serde::Deserialize;

use super::common::{created, same_member, upstream};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

const READERS: &[Role] = &[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    member_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A member's users list their member's quotes (another member's list is "not found"); an agent's list is
/// restricted to its provider's by billing; a referent names the member (`?member_id=` required).
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Quote>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let own = caller.own_member().filter(|own| asked.is_empty() || same_member(&asked, *own));
    let member_id = if caller.has(Role::Coordinator) || caller.has(Role::ProviderAgent) {
        // The coordinator sees all; billing keeps an agent to the quotes its provider issued.
        asked
    } else if let Some(own) = own {
        own.to_string()
    } else if caller.has(Role::Referent) {
        if asked.is_empty() {
            checks.fail("member_id", "is required for a referent");
        }
        asked
    } else {
        checks.finish()?;
        return Err(Problem::not_found(format!("member {asked} not found")));
    };
    checks.finish()?;
    let request = pb::ListQuotesRequest { member_id, request_id, page_size, page_token };
    let response = state.billing().list_quotes(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(Json(Page::new(response.quotes, response.next_page_token)))
}

/// One quote as JSON, or as `{id}.pdf`. Another member's quote is "not found" for a member's user, another
/// provider's for an agent.
pub async fn get(State(state): State<AppState>, caller: Authenticated, P(raw): P<String>) -> Result<Response, Problem> {
    caller.allow(READERS)?;
    let (id, pdf) = match raw.strip_suffix(".pdf") {
        Some(id) => (id.to_owned(), true),
        None => (raw, false),
    };
    path_id("id", &id)?;
    let quote = state
        .billing()
        .get_quote(caller.grpc(pb::GetQuoteRequest { id: id.clone() }))
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    // The referent's view is the service's to decide (it knows whom the referent follows).
    let visible = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&quote.member_id)
        || caller.is_agent_of(&quote.issuer_code);
    if !visible {
        return Err(Problem::not_found(format!("quote {id} not found")));
    }
    if !pdf {
        return Ok(Json(views::Quote::from(quote)).into_response());
    }
    let request = pb::ExportQuoteRequest { id, format: pb::ExportFormat::Pdf.into() };
    let file = state.billing().export_quote(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(download(file))
}

/// A member's users list their member's invoices, an agent its provider's, a referent those of a member it
/// follows (`?member_id=` required), the coordinator all: the same rules as quotes.
pub async fn list_invoices(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Invoice>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let own = caller.own_member().filter(|own| asked.is_empty() || same_member(&asked, *own));
    let member_id = if caller.has(Role::Coordinator) || caller.has(Role::ProviderAgent) {
        asked
    } else if let Some(own) = own {
        own.to_string()
    } else if caller.has(Role::Referent) {
        if asked.is_empty() {
            checks.fail("member_id", "is required for a referent");
        }
        asked
    } else {
        checks.finish()?;
        return Err(Problem::not_found(format!("member {asked} not found")));
    };
    checks.finish()?;
    let request = pb::ListInvoicesRequest { member_id, request_id, page_size, page_token };
    let response = state.billing().list_invoices(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(Json(Page::new(response.invoices, response.next_page_token)))
}

fn visible(caller: &Authenticated, invoice: &pb::Invoice) -> bool {
    caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&invoice.member_id)
        || caller.is_agent_of(&invoice.issuer_code)
}

/// The export format a path's suffix asks for: `.xml` (Factur-X / CII, EN 16931), `.ubl.xml` (UBL 2.1,
/// EN 16931), `.csv` (accounting) or `.pdf`; none: JSON.
fn split_format(raw: String) -> (String, Option<pb::ExportFormat>) {
    for (suffix, format) in [
        (".ubl.xml", pb::ExportFormat::UblXml),
        (".xml", pb::ExportFormat::CiiXml),
        (".csv", pb::ExportFormat::Csv),
        (".pdf", pb::ExportFormat::Pdf),
    ] {
        if let Some(id) = raw.strip_suffix(suffix) {
            return (id.to_owned(), Some(format));
        }
    }
    (raw, None)
}

/// A file as a download (its content type and an attachment file name).
fn download(file: pb::ExportInvoiceResponse) -> Response {
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    ([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], file.content).into_response()
}

/// One invoice as JSON, or as a file: `{id}.xml` (Factur-X / CII, EN 16931), `{id}.ubl.xml` (UBL 2.1, EN 16931),
/// `{id}.csv` (accounting) or `{id}.pdf`.
/// Another member's or provider's invoice is "not found".
pub async fn get_invoice(
    State(state): State<AppState>,
    caller: Authenticated,
    P(raw): P<String>,
) -> Result<Response, Problem> {
    caller.allow(READERS)?;
    let (id, format) = split_format(raw);
    path_id("id", &id)?;
    let invoice = state
        .billing()
        .get_invoice(caller.grpc(pb::GetInvoiceRequest { id: id.clone() }))
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    if !visible(&caller, &invoice) {
        return Err(Problem::not_found(format!("invoice {id} not found")));
    }
    let Some(format) = format else { return Ok(Json(views::Invoice::from(invoice)).into_response()) };
    let file = state
        .billing()
        .export_invoice(caller.grpc(pb::ExportInvoiceRequest { id, format: format.into() }))
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    Ok(download(file))
}

/// One credit note as JSON, or as a file (`.xml`, `.ubl.xml`, `.csv`, `.pdf` as invoices): seen by whoever sees
/// the invoice it cancels; otherwise "not found".
pub async fn get_credit_note(
    State(state): State<AppState>,
    caller: Authenticated,
    P(raw): P<String>,
) -> Result<Response, Problem> {
    caller.allow(READERS)?;
    let (id, format) = split_format(raw);
    path_id("id", &id)?;
    let note = state
        .billing()
        .get_credit_note(caller.grpc(pb::GetCreditNoteRequest { id: id.clone() }))
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    let visible = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&note.member_id)
        || caller.is_agent_of(&note.issuer_code);
    if !visible {
        return Err(Problem::not_found(format!("credit note {id} not found")));
    }
    let Some(format) = format else { return Ok(Json(views::CreditNote::from(note)).into_response()) };
    let request = pb::ExportCreditNoteRequest { id, format: format.into() };
    let file =
        state.billing().export_credit_note(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(download(file))
}

#[derive(Debug, Deserialize)]
pub struct CreditNoteBody {
    reason: Option<String>,
}

/// Longest reason of a credit note.
pub const MAX_CREDIT_REASON_CHARS: usize = 500;

/// The coordinator cancels an invoice by a credit note (201); the reason is required.
pub async fn credit_note(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<CreditNoteBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.required("reason", body.reason, MAX_CREDIT_REASON_CHARS);
    checks.finish()?;
    let request = pb::IssueCreditNoteRequest { invoice_id: id.clone(), reason };
    let note = state.billing().issue_credit_note(caller.grpc(request)).await.map_err(upstream("billing"))?;
    Ok(created(format!("/v1/invoices/{id}"), views::CreditNote::from(note.into_inner())))
}

#[derive(Debug, Deserialize)]
pub struct MarkBody {
    date: Option<String>,
    payment_reference: Option<String>,
}

/// Longest payment reference.
pub const MAX_PAYMENT_REFERENCE_CHARS: usize = 100;

async fn mark(
    state: &AppState,
    caller: &Authenticated,
    id: String,
    mark: pb::InvoiceMark,
    body: Result<Json<MarkBody>, JsonRejection>,
) -> Result<Json<views::Invoice>, Problem> {
    // The coordinator, or the issuing provider's agents (billing keeps them to their own invoices).
    caller.allow(&[Role::Coordinator, Role::ProviderAgent])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let date = checks.required("date", body.date, 10);
    let payment_reference = if mark == pb::InvoiceMark::Paid {
        checks.required("payment_reference", body.payment_reference, MAX_PAYMENT_REFERENCE_CHARS)
    } else {
        String::new()
    };
    checks.finish()?;
    let request = pb::MarkInvoiceRequest { id, mark: mark.into(), date, payment_reference };
    let invoice = state.billing().mark_invoice(caller.grpc(request)).await.map_err(upstream("billing"))?;
    Ok(Json(invoice.into_inner().into()))
}

/// `POST /v1/invoices/{id}/sent` `{"date": "YYYY-MM-DD"}`: the invoice was sent to the buyer (issued → sent).
pub async fn mark_sent(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<MarkBody>, JsonRejection>,
) -> Result<Json<views::Invoice>, Problem> {
    mark(&state, &caller, id, pb::InvoiceMark::Sent, body).await
}

/// `POST /v1/invoices/{id}/paid` `{"date": "YYYY-MM-DD", "payment_reference": "..."}`: the invoice was paid.
pub async fn mark_paid(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<MarkBody>, JsonRejection>,
) -> Result<Json<views::Invoice>, Problem> {
    mark(&state, &caller, id, pb::InvoiceMark::Paid, body).await
}

/// Longest signatory name, purchase order number and refusal reason (billing's limits).
pub const MAX_SIGNATORY_CHARS: usize = 200;
pub const MAX_PURCHASE_ORDER_CHARS: usize = 50;
pub const MAX_REFUSAL_REASON_CHARS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptQuoteBody {
    signatory_name: Option<String>,
    purchase_order_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefuseQuoteBody {
    reason: Option<String>,
}

/// A purchase order number is printed on the invoice: no control characters.
fn printable(checks: &mut Checks, field: &str, value: &str) {
    if value.chars().any(char::is_control) {
        checks.fail(field, "must not contain control characters");
    }
}

/// `POST /v1/quotes/{id}/accept` `{"signatory_name": "...", "purchase_order_number": "..."}`: a member admin
/// agrees to a proposed quote (the provider may then work). Billing keeps the admin to its own member's quotes
/// (403) and a quote to one decision (409 `invalid-transition`).
pub async fn accept(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<AcceptQuoteBody>, JsonRejection>,
) -> Result<Json<views::Quote>, Problem> {
    caller.allow(&[Role::MemberAdmin])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let signatory_name = checks.required("signatory_name", body.signatory_name, MAX_SIGNATORY_CHARS).trim().to_owned();
    printable(&mut checks, "signatory_name", &signatory_name);
    let purchase_order_number = checks
        .optional("purchase_order_number", body.purchase_order_number, MAX_PURCHASE_ORDER_CHARS)
        .trim()
        .to_owned();
    printable(&mut checks, "purchase_order_number", &purchase_order_number);
    checks.finish()?;
    let request = pb::AcceptQuoteRequest { id, signatory_name, purchase_order_number };
    let quote = state.billing().accept_quote(caller.grpc(request)).await.map_err(upstream("billing"))?;
    Ok(Json(quote.into_inner().into()))
}

/// `POST /v1/quotes/{id}/refuse` `{"reason": "..."}`: a member admin turns a proposed quote down; the request is
/// then cancelled (its history names the admin and the reason).
pub async fn refuse(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<RefuseQuoteBody>, JsonRejection>,
) -> Result<Json<views::Quote>, Problem> {
    caller.allow(&[Role::MemberAdmin])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.required("reason", body.reason, MAX_REFUSAL_REASON_CHARS).trim().to_owned();
    checks.finish()?;
    let request = pb::RefuseQuoteRequest { id, reason };
    let quote = state.billing().refuse_quote(caller.grpc(request)).await.map_err(upstream("billing"))?;
    Ok(Json(quote.into_inner().into()))
}
