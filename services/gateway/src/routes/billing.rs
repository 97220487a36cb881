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
use crate::extract::{Checks, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get, accept, refuse, list_invoices, get_invoice, credit_note, mark_sent, mark_paid, get_credit_note),
    components(schemas(
        views::Quote,
        views::QuoteStatusDoc,
        views::Invoice,
        views::InvoiceStatusDoc,
        views::InvoiceLine,
        views::CreditNote,
        views::Party,
        AcceptQuoteBody,
        RefuseQuoteBody,
        CreditNoteBody,
        InvoiceSentDoc,
        InvoicePaidDoc,
    )),
    modifiers(&SpecificErrors),
)]
pub struct Api;

/// The errors of this module's operations that their shape does not imply (`crate::api_docs` adds those), each a
/// reference to the document's shared answer with what it means here: (path, status, shared answer, meaning).
const SPECIFIC_ERRORS: &[(&str, &str, &str, &str)] = &[
    ("/v1/quotes", "404", "NotFound", "A member's user named another member in `member_id`."),
    ("/v1/invoices", "404", "NotFound", "A member's user named another member in `member_id`."),
    ("/v1/quotes/{id}/accept", "409", "Conflict", "The quote is no longer proposed: `invalid-transition`."),
    ("/v1/quotes/{id}/refuse", "409", "Conflict", "The quote is no longer proposed: `invalid-transition`."),
    ("/v1/invoices/{id}/credit-note", "409", "Conflict", "The invoice is already cancelled."),
    ("/v1/invoices/{id}/sent", "409", "Conflict", "The invoice is already sent, paid or cancelled."),
    ("/v1/invoices/{id}/paid", "409", "Conflict", "The invoice is already paid, or cancelled."),
];

/// Adds [`SPECIFIC_ERRORS`] to the operations.
struct SpecificErrors;

impl utoipa::Modify for SpecificErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        for (path, status, shared, meaning) in SPECIFIC_ERRORS {
            let Some(item) = doc.paths.paths.get_mut(*path) else { continue };
            for operation in [item.get.as_mut(), item.post.as_mut()].into_iter().flatten() {
                let mut answer = Ref::new(format!("#/components/responses/{shared}"));
                answer.description = (*meaning).to_owned();
                operation.responses.responses.insert((*status).to_owned(), RefOr::Ref(answer));
            }
        }
    }
}

// A downloaded PDF, as the OpenAPI document describes it (inlined in the answers).
/// A PDF document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileDoc(Vec<u8>);

const READERS: &[Role] = &[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];

/// The filters and page of a list of quotes or invoices; an unknown parameter answers 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this request's.
    #[param(format = "uuid", max_length = 100)]
    request_id: Option<String>,
    /// Only this member's; required for a referent (a member it follows). A member's users always see only their
    /// own member's: naming another member answers 404.
    #[param(format = "uuid", max_length = 100)]
    member_id: Option<String>,
    /// Only items created or changed strictly after this instant (RFC 3339 with its offset, e.g.
    /// `2026-12-06T10:00:00Z`); use the `Date` of your last sync's response, or your last sync time.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    updated_since: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// A member's users list their member's quotes (another member's list is "not found"); an agent's list is
/// restricted to its provider's by billing; a referent names the member (`?member_id=` required).
#[utoipa::path(
    get,
    path = "/v1/quotes",
    tag = "billing",
    operation_id = "listQuotes",
    summary = "List quotes (member users: their member's; provider_agent: its provider's; referent: a followed member's; coordinator: any)",
    description = "Referents name the member with `member_id` (400 without it); a member's users asking for another \
        member get 404. Each quote carries its amount excluding VAT (`amount_cents`), its VAT rate (`vat_rate_bp`), \
        its VAT (`vat_cents`) and its total including VAT (`total_incl_vat_cents`), as billing computes them.",
    params(ListParams),
    responses(
        (status = 200, description = "A page of quotes, oldest first (by issue time).", body = Page<views::Quote>),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Quote>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.uuid_filter("request_id", params.request_id);
    let asked = checks.uuid_filter("member_id", params.member_id);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let updated_since = super::requests::updated_since(&mut checks, params.updated_since);
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
    let request = pb::ListQuotesRequest { member_id, request_id, page_size, page_token, updated_since };
    let response = state.billing().list_quotes(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(Json(Page::new(response.quotes, response.next_page_token)))
}

/// One quote as JSON, or as `{id}.pdf`. Another member's quote is "not found" for a member's user, another
/// provider's for an agent.
#[utoipa::path(
    get,
    path = "/v1/quotes/{id}",
    tag = "billing",
    operation_id = "getQuote",
    summary = "One quote (its member's users, its issuing provider, its referent, coordinator); `{id}.pdf` answers the quote as an A4 PDF",
    description = "Another member's or provider's quote answers 404.",
    params((
        "id" = String, Path, max_length = 100,
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(\\.pdf)?$",
        description = "The quote's id (a UUID), optionally followed by `.pdf`."
    )),
    responses((
        status = 200,
        description = "The quote as JSON; with `.pdf`, as an A4 PDF to download.",
        content((views::Quote = "application/json"), (inline(FileDoc) = "application/pdf")),
        headers(("Content-Disposition" = String, description = "PDF only: `attachment; filename=\"<number>.pdf\"`.")),
    )),
    security(("bearerAuth" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = "billing",
    operation_id = "listInvoices",
    summary = "Invoices (a member's users their own, a provider what it issued, a referent a member it follows, coordinator all)",
    description = "Same access rules as quotes. An invoice is issued when a provider completes a referral of a billed \
        offer; it carries its totals excluding VAT (`total_net_cents`), VAT (`total_vat_cents`) and including VAT \
        (`total_gross_cents`) with its VAT rate (`vat_rate_bp`).",
    params(ListParams),
    responses(
        (status = 200, description = "A page of invoices, oldest first (by issue time).", body = Page<views::Invoice>),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn list_invoices(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Invoice>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.uuid_filter("request_id", params.request_id);
    let asked = checks.uuid_filter("member_id", params.member_id);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let updated_since = super::requests::updated_since(&mut checks, params.updated_since);
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
    let request = pb::ListInvoicesRequest { member_id, request_id, page_size, page_token, updated_since };
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
#[utoipa::path(
    get,
    path = "/v1/invoices/{id}",
    tag = "billing",
    operation_id = "getInvoice",
    summary = "One invoice, as JSON or as a file: `{id}.xml` (Factur-X / CII XML, EN 16931 profile), `{id}.ubl.xml` (UBL 2.1 Invoice, EN 16931), `{id}.csv` (accounting CSV) or `{id}.pdf` (A4, for humans)",
    description = "Another member's or provider's invoice answers 404. The `.xml` and `.ubl.xml` suffixes answer \
        application/xml, `.csv` text/csv, `.pdf` application/pdf. Both XML syntaxes carry the seller's SIRET as its \
        electronic address (scheme 0009, Chorus Pro) and pass the EN 16931 schemas and business rules.",
    params((
        "id" = String, Path, max_length = 100,
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(\\.xml|\\.ubl\\.xml|\\.csv|\\.pdf)?$",
        description = "The invoice's id (a UUID), optionally followed by `.xml`, `.ubl.xml`, `.csv` or `.pdf`."
    )),
    responses((
        status = 200,
        description = "The invoice as JSON, or as a file to download.",
        content(
            (views::Invoice = "application/json"),
            (String = "application/xml"),
            (String = "text/csv"),
            (inline(FileDoc) = "application/pdf"),
        ),
        headers(("Content-Disposition" = String, description = "Files only: `attachment; filename=\"<number>.<suffix>\"`.")),
    )),
    security(("bearerAuth" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/v1/credit-notes/{id}",
    tag = "billing",
    operation_id = "getCreditNote",
    summary = "One credit note, as JSON or as a file: `{id}.xml` (Factur-X / CII XML, type 381), `{id}.ubl.xml` (UBL 2.1 CreditNote), `{id}.csv` or `{id}.pdf`",
    description = "Seen by whoever sees the invoice it cancels (its member's users, the issuing provider's agents, \
        the member's referent, the coordinator); anyone else gets 404.",
    params((
        "id" = String, Path, max_length = 100,
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(\\.xml|\\.ubl\\.xml|\\.csv|\\.pdf)?$",
        description = "The credit note's id (a UUID), optionally followed by `.xml`, `.ubl.xml`, `.csv` or `.pdf`."
    )),
    responses((
        status = 200,
        description = "The credit note as JSON, or as a file to download.",
        content(
            (views::CreditNote = "application/json"),
            (String = "application/xml"),
            (String = "text/csv"),
            (inline(FileDoc) = "application/pdf"),
        ),
        headers(("Content-Disposition" = String, description = "Files only: `attachment; filename=\"<number>.<suffix>\"`.")),
    )),
    security(("bearerAuth" = [])),
)]
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

/// Why the coordinator cancels an invoice.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CreditNoteRequest)]
pub struct CreditNoteBody {
    /// Printed on the credit note; not blank.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500, pattern = "\\S",
        examples("Prestation facturée deux fois"))]
    reason: Option<String>,
}

/// Longest reason of a credit note.
pub const MAX_CREDIT_REASON_CHARS: usize = 500;

/// The coordinator cancels an invoice by a credit note (201); the reason is required.
#[utoipa::path(
    post,
    path = "/v1/invoices/{id}/credit-note",
    tag = "billing",
    operation_id = "issueCreditNote",
    summary = "Cancel an invoice by a credit note (coordinator)",
    description = "Numbered A-<issuer>-<year>-<seq:06>, gapless per issuer and year; the invoice becomes `cancelled`. \
        An invoice already cancelled answers 409.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The invoice's id.")),
    request_body = CreditNoteBody,
    responses(
        (status = 201, description = "The credit note, with the lines and totals of the invoice it cancels.",
            body = views::CreditNote,
            headers(("Location" = String, description = "The credit note: `/v1/credit-notes/{id}`."))),
    ),
    security(("bearerAuth" = [])),
)]
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
    let note = state.billing().issue_credit_note(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    // The new resource is the credit note (`GET /v1/credit-notes/{id}`), not the invoice it cancels.
    Ok(created(format!("/v1/credit-notes/{}", note.id), views::CreditNote::from(note)))
}

/// The body of `/sent` and `/paid` (documented as [`InvoiceSentDoc`] and [`InvoicePaidDoc`]).
#[derive(Debug, Deserialize)]
pub struct MarkBody {
    date: Option<String>,
    payment_reference: Option<String>,
}

/// Longest payment reference.
pub const MAX_PAYMENT_REFERENCE_CHARS: usize = 100;

/// When the invoice was sent to the buyer.
#[derive(utoipa::ToSchema)]
#[schema(as = InvoiceSent)]
#[allow(dead_code)]
pub struct InvoiceSentDoc {
    /// YYYY-MM-DD, not before the issue date nor in the future (French calendar).
    #[schema(format = Date, max_length = 10, examples("2026-03-05"))]
    date: String,
}

/// When and how the invoice was paid.
#[derive(utoipa::ToSchema)]
#[schema(as = InvoicePaid)]
#[allow(dead_code)]
pub struct InvoicePaidDoc {
    /// YYYY-MM-DD, not before the issue date nor in the future (French calendar).
    #[schema(format = Date, max_length = 10, examples("2026-03-20"))]
    date: String,
    /// The payment's reference, e.g. the treasury's mandate number; not blank.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S", examples("MANDAT-2026-1187"))]
    payment_reference: String,
}

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
#[utoipa::path(
    post,
    path = "/v1/invoices/{id}/sent",
    tag = "billing",
    operation_id = "markInvoiceSent",
    summary = "Record that an invoice was sent (coordinator or issuing provider)",
    description = "issued → sent. The coordinator, or an agent of the provider that issued it (another provider's \
        invoice answers 404). A sent, paid or cancelled invoice answers 409.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The invoice's id.")),
    request_body = InvoiceSentDoc,
    responses(
        (status = 200, description = "The invoice, marked sent.", body = views::Invoice),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn mark_sent(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<MarkBody>, JsonRejection>,
) -> Result<Json<views::Invoice>, Problem> {
    mark(&state, &caller, id, pb::InvoiceMark::Sent, body).await
}

/// `POST /v1/invoices/{id}/paid` `{"date": "YYYY-MM-DD", "payment_reference": "..."}`: the invoice was paid.
#[utoipa::path(
    post,
    path = "/v1/invoices/{id}/paid",
    tag = "billing",
    operation_id = "markInvoicePaid",
    summary = "Record that an invoice was paid (coordinator or issuing provider)",
    description = "issued or sent → paid, with the payment's reference (e.g. the treasury's mandate number). The \
        coordinator, or an agent of the provider that issued it (another provider's invoice answers 404). A paid or \
        cancelled invoice answers 409.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The invoice's id.")),
    request_body = InvoicePaidDoc,
    responses(
        (status = 200, description = "The invoice, marked paid.", body = views::Invoice),
    ),
    security(("bearerAuth" = [])),
)]
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

/// A member admin agrees to a proposed quote: who signs for the member and, optionally, the purchase order number
/// (numéro d'engagement) the invoice will carry. Unknown fields answer 400.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QuoteAcceptance)]
pub struct AcceptQuoteBody {
    /// Who signs for the member, e.g. "Marie Dupont, maire": not blank, no control characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        examples("Marie Dupont, maire"))]
    signatory_name: Option<String>,
    /// Optional purchase order number / numéro d'engagement (printable, no control characters).
    #[schema(value_type = String, required = false, max_length = 50,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$", examples("EJ-2026-0042"))]
    purchase_order_number: Option<String>,
}

/// A member admin turns a proposed quote down, with a reason. Unknown fields answer 400.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QuoteRefusal)]
pub struct RefuseQuoteBody {
    /// Not blank; line breaks and tabs allowed, no other control character.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1000,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$",
        examples("Budget non voté cette année"))]
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
#[utoipa::path(
    post,
    path = "/v1/quotes/{id}/accept",
    tag = "billing",
    operation_id = "acceptQuote",
    summary = "Accept a proposed quote (a member admin of the quote's member)",
    description = "proposed → accepted: the public buyer commits the expense before the work (ADR 0013). Publishes \
        `quote.accepted`; routing then lets the provider report progress and complete the referral (until then they \
        answer 409 `quote-not-accepted`), and the invoice will bill this quote with its purchase order number. Only a \
        member admin of the quote's member may (403 for anyone else, the coordinator and the provider included); a \
        quote that is no longer proposed (accepted, refused, voided, expired) answers 409 `invalid-transition`; a \
        missing or too long `signatory_name` or a too long `purchase_order_number` answers 400 naming the field.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The quote's id.")),
    request_body = AcceptQuoteBody,
    responses(
        (status = 200, description = "The quote, as decided.", body = views::Quote),
    ),
    security(("bearerAuth" = [])),
)]
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
#[utoipa::path(
    post,
    path = "/v1/quotes/{id}/refuse",
    tag = "billing",
    operation_id = "refuseQuote",
    summary = "Refuse a proposed quote, with a reason (a member admin of the quote's member)",
    description = "proposed → refused. Publishes `quote.refused`; the request is then cancelled (its history names \
        the admin and the reason) and the provider's referral withdrawn. A member that wants other terms files a new \
        request. Same 403 and 409 (`invalid-transition`) as acceptance; a missing or too long `reason` answers 400.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The quote's id.")),
    request_body = RefuseQuoteBody,
    responses(
        (status = 200, description = "The quote, as decided.", body = views::Quote),
    ),
    security(("bearerAuth" = [])),
)]
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

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts;
    use axum::http::{Request, StatusCode};

    use super::*;

    async fn query(uri: &str) -> Result<ListParams, Problem> {
        let (mut parts, ()) = Request::builder().uri(uri).body(()).unwrap_or_default().into_parts();
        Q::<ListParams>::from_request_parts(&mut parts, &()).await.map(|Q(params)| params)
    }

    #[tokio::test]
    async fn list_queries_refuse_unknown_parameters_naming_them() {
        let known = query("/v1/quotes?request_id=r&member_id=m&limit=5&cursor=c").await;
        assert!(known.is_ok_and(|p| p.limit.as_deref() == Some("5") && p.cursor.as_deref() == Some("c")));
        assert!(query("/v1/invoices").await.is_ok());
        for uri in ["/v1/quotes?status=accepted", "/v1/invoices?limit=5&page_size=5"] {
            let problem = query(uri).await.err();
            let body = problem.as_ref().map(|p| (p.status, p.body().to_string()));
            let field = if uri.contains("status") { "`status`" } else { "`page_size`" };
            assert!(
                body.as_ref().is_some_and(|(status, body)| *status == StatusCode::BAD_REQUEST && body.contains(field)),
                "{uri}: {body:?}"
            );
        }
    }

    #[test]
    fn the_document_describes_every_billing_operation_with_the_vat_of_quotes() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(Api::openapi()).unwrap_or_default();
        let operations = [
            ("/v1/quotes", "get", "listQuotes"),
            ("/v1/quotes/{id}", "get", "getQuote"),
            ("/v1/quotes/{id}/accept", "post", "acceptQuote"),
            ("/v1/quotes/{id}/refuse", "post", "refuseQuote"),
            ("/v1/invoices", "get", "listInvoices"),
            ("/v1/invoices/{id}", "get", "getInvoice"),
            ("/v1/invoices/{id}/credit-note", "post", "issueCreditNote"),
            ("/v1/invoices/{id}/sent", "post", "markInvoiceSent"),
            ("/v1/invoices/{id}/paid", "post", "markInvoicePaid"),
            ("/v1/credit-notes/{id}", "get", "getCreditNote"),
        ];
        for (path, method, id) in operations {
            let op = &doc["paths"][path][method];
            assert_eq!(op["operationId"], id, "{method} {path}");
            assert_eq!(op["security"][0]["bearerAuth"], serde_json::json!([]), "{method} {path}");
        }
        let params = &doc["paths"]["/v1/quotes"]["get"]["parameters"];
        let names: Vec<_> = params.as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["request_id", "member_id", "updated_since", "limit", "cursor"]);
        let quote = &doc["components"]["schemas"]["Quote"];
        for field in ["amount_cents", "vat_rate_bp", "vat_cents", "total_incl_vat_cents"] {
            let required = quote["required"].as_array().is_some_and(|r| r.iter().any(|f| f == field));
            assert!(quote["properties"][field].is_object() && required, "Quote.{field}: {quote}");
        }
        assert_eq!(doc["components"]["schemas"]["QuoteAcceptance"]["additionalProperties"], false);
        let conflict = &doc["paths"]["/v1/quotes/{id}/accept"]["post"]["responses"]["409"];
        assert_eq!(conflict["$ref"], "#/components/responses/Conflict");
        assert!(conflict["description"].as_str().is_some_and(|d| d.contains("invalid-transition")));
    }
}
