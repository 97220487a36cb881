//! The conversation on a request, shown on the member's request page, the provider's referral page and to the
//! coordinator: messages with their author, role and time, a text message form, a file form (multipart,
//! streamed to the gateway's raw-body upload as it arrives), downloads through the portal (streamed back), and
//! the thread marked read when the page is opened.

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller::{self, check_csrf};
use crate::forms::{self, Fields};
use crate::html::{esc, url_component};
use crate::layout::{ERROR_FLASH, see_other};
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// Longest message, in characters (the gateway's limit).
pub const MAX_MESSAGE_CHARS: usize = 5_000;
/// Largest attachment, in bytes (the gateway's and the service's limit: 10 Mio).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
/// Body limit of the upload route: the file and the few form fields around it.
pub const MAX_UPLOAD_BODY_BYTES: usize = MAX_ATTACHMENT_BYTES + 64 * 1024;
/// What the service accepts (it checks the first bytes too), as the file picker's hint.
pub const ACCEPT: &str = ".pdf,.png,.jpg,.jpeg,.odt,.ods,.docx,.xlsx,.txt";
/// The same, for people.
pub const ALLOWED_TYPES: &str = "PDF, PNG, JPEG, ODT, ODS, DOCX, XLSX ou texte brut (TXT), 10 Mo au plus";

/// Where to come back after posting: the request's page (member, coordinator) or one referral's page
/// (provider). Anything else falls back to the request's page.
pub fn back_to(retour: &str, request_id: &str) -> String {
    let fallback = format!("/demandes/{}", url_component(request_id));
    if retour == fallback {
        return fallback;
    }
    match retour.strip_prefix("/orientations/") {
        Some(referral) if safe_id(referral).is_some() => retour.to_owned(),
        _ => fallback,
    }
}

/// A message's text: required, at most [`MAX_MESSAGE_CHARS`]; `Err` is the French message.
pub fn check_message(text: &str, required: bool) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() && required {
        return Err("Le champ « Votre message » est obligatoire.".into());
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!("Le message ne doit pas dépasser {MAX_MESSAGE_CHARS} caractères."));
    }
    Ok(text.to_owned())
}

/// `1536` → `1,5 Ko`; bytes below 1 Ko, Mo above 1 Mio.
pub fn size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{bytes}\u{a0}o")
    } else if b < 1024.0 * 1024.0 {
        format!("{}\u{a0}Ko", format!("{:.1}", b / 1024.0).replace('.', ","))
    } else {
        format!("{}\u{a0}Mo", format!("{:.1}", b / (1024.0 * 1024.0)).replace('.', ","))
    }
}

/// The unread count of each request's thread for the caller (`None` when the thread could not be read).
pub async fn unread_counts(state: &AppState, token: &str, ids: &[String]) -> Vec<Option<u64>> {
    use futures::StreamExt as _;
    let calls = ids.iter().cloned().map(|id: String| async move {
        let id = safe_id(&id)?;
        let thread = state.gateway.get(&format!("/v1/requests/{id}/messages?limit=1"), Some(token)).await.ok()?;
        thread["unread_count"].as_u64()
    });
    // A few at a time: the list shows up to 100 requests.
    futures::stream::iter(calls).buffered(UNREAD_CALLS_IN_FLIGHT).collect().await
}

/// Concurrent gateway calls for the unread counts of a list.
const UNREAD_CALLS_IN_FLIGHT: usize = 8;
/// Pages of 100 messages read for one thread (oldest first: the whole thread up to 1000 messages).
const MAX_THREAD_PAGES: usize = 10;

/// The thread section of a page: the messages (marked read once fetched), the two forms. `back` is the page
/// to come back to after posting.
pub async fn section(state: &AppState, ctx: &Ctx, token: &str, request_id: &str, back: &str) -> String {
    let Some(id) = safe_id(request_id) else { return String::new() };
    // The thread comes oldest first: read every page (bounded) so that the newest messages are shown.
    let mut messages = Vec::new();
    let mut unread = 0;
    let mut cursor = String::new();
    for _ in 0..MAX_THREAD_PAGES {
        let path = format!("/v1/requests/{id}/messages?limit=100{}", crate::html::query_tail("cursor", &cursor));
        let thread = match state.gateway.get(&path, Some(token)).await {
            Ok(t) => t,
            Err(error) => {
                return format!(
                    r#"<section id="conversation" aria-labelledby="conversation-titre"><h2 id="conversation-titre">Échanges</h2><p>Les échanges ne peuvent pas être affichés : {}</p></section>"#,
                    esc(&fr::problem(&error))
                );
            }
        };
        unread = thread["unread_count"].as_u64().unwrap_or(0);
        messages.extend(items(&thread).iter().cloned());
        match thread["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_owned(),
            _ => break,
        }
    }
    if unread > 0 {
        // Opening the page reads the thread; a failure only leaves the count as it was.
        if let Err(error) =
            state.gateway.post(&format!("/v1/requests/{id}/messages/read"), Some(token), &json!({})).await
        {
            tracing::warn!(request = id, status = error.status, "could not mark the thread read");
        }
    }
    render(ctx, id, back, &messages, unread)
}

/// The HTML of a thread (pure, for tests).
pub fn render(ctx: &Ctx, request_id: &str, back: &str, messages: &[Value], unread: u64) -> String {
    let rid = url_component(request_id);
    let mut out = String::from(
        r#"<section id="conversation" aria-labelledby="conversation-titre" class="conversation"><h2 id="conversation-titre">Échanges</h2>"#,
    );
    if unread > 0 {
        let _ = write!(
            out,
            r#"<p class="badge">{unread} nouveau{} message{} depuis votre dernière visite.</p>"#,
            if unread > 1 { "x" } else { "" },
            if unread > 1 { "s" } else { "" }
        );
    }
    if messages.is_empty() {
        out.push_str("<p>Aucun message pour l'instant.</p>");
    } else {
        out.push_str(r#"<ol class="thread">"#);
        for m in messages {
            let author = if s(m, "author_name").is_empty() { "Utilisateur" } else { s(m, "author_name") };
            let _ = write!(
                out,
                r#"<li class="message"><p class="meta"><strong>{}</strong> <span class="role">({})</span> — <time datetime="{}">{}</time></p>"#,
                esc(author),
                esc(fr::role(s(m, "author_role"))),
                esc(s(m, "created_at")),
                esc(&fr::datetime(s(m, "created_at"))),
            );
            if !s(m, "body").is_empty() {
                let _ = write!(out, "<p>{}</p>", crate::html::multiline(s(m, "body")));
            }
            let attachments = m["attachments"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if !attachments.is_empty() {
                out.push_str(r#"<ul class="attachments">"#);
                for a in attachments {
                    let _ = write!(
                        out,
                        r#"<li><a href="/demandes/{rid}/pieces/{}" download>{}</a> <span class="hint">({}, {})</span></li>"#,
                        url_component(s(a, "id")),
                        esc(s(a, "filename")),
                        esc(s(a, "content_type")),
                        esc(&size(a["size_bytes"].as_i64().unwrap_or(0))),
                    );
                }
                out.push_str("</ul>");
            }
            out.push_str("</li>");
        }
        out.push_str("</ol>");
    }
    let csrf = forms::csrf(&ctx.csrf);
    let back = esc(back);
    let _ = write!(
        out,
        r#"<form method="post" action="/demandes/{rid}/messages" class="form" novalidate>{csrf}<input type="hidden" name="retour" value="{back}">
<div class="field"><label for="message">Votre message <span class="req">(obligatoire)</span></label><p class="hint" id="message-aide">{max} caractères au plus. Il est visible par la collectivité, le partenaire et la coordination.</p><textarea id="message" name="message" rows="4" aria-describedby="message-aide" required></textarea></div>
<button type="submit">Envoyer le message</button></form>
<form method="post" action="/demandes/{rid}/pieces" enctype="multipart/form-data" class="form">{csrf}<input type="hidden" name="retour" value="{back}">
<fieldset><legend>Joindre un fichier</legend>
<div class="field"><label for="legende">Message accompagnant le fichier</label><p class="hint" id="legende-aide">Facultatif.</p><input type="text" id="legende" name="legende" aria-describedby="legende-aide" autocomplete="off"></div>
<div class="field"><label for="fichier">Fichier <span class="req">(obligatoire)</span></label><p class="hint" id="fichier-aide">Formats acceptés : {types}.</p><input type="file" id="fichier" name="fichier" accept="{ACCEPT}" aria-describedby="fichier-aide" required></div>
<button type="submit">Envoyer le fichier</button></fieldset></form></section>"#,
        max = MAX_MESSAGE_CHARS,
        types = esc(ALLOWED_TYPES),
    );
    out
}

fn participant(ctx: &Ctx) -> bool {
    ctx.is_member() || ctx.is("provider_agent") || ctx.is("coordinator") || ctx.is("referent")
}

fn refused(ctx: &Ctx) -> Response {
    layout::error_page(
        ctx,
        StatusCode::FORBIDDEN,
        "Accès réservé",
        "Vous ne participez pas aux échanges de cette demande.",
    )
}

fn not_found(ctx: &Ctx) -> Response {
    prologue::not_found(ctx, "Cette demande n'existe pas.")
}

async fn flash(state: &AppState, ctx: &Ctx, message: String) {
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
}

/// `POST /demandes/{id}/messages`: a text message.
pub async fn post_message(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    if !participant(&ctx) {
        return refused(&ctx);
    }
    let Some(id) = safe_id(&id) else { return not_found(&ctx) };
    let back = back_to(forms::value(&f, "retour"), id);
    match check_message(f.get("message").map(String::as_str).unwrap_or(""), true) {
        Err(message) => flash(&state, &ctx, format!("{ERROR_FLASH}{message}")).await,
        Ok(text) => {
            match state
                .gateway
                .post(&format!("/v1/requests/{id}/messages"), Some(&token), &json!({ "body": text }))
                .await
            {
                Ok(_) => flash(&state, &ctx, "Votre message est envoyé.".into()).await,
                Err(error) => flash(&state, &ctx, format!("{ERROR_FLASH}{}", attachment_problem(&error))).await,
            }
        }
    }
    see_other(&format!("{back}#conversation"))
}

/// The French sentence for a refused upload or message.
pub fn attachment_problem(error: &crate::gateway::ApiError) -> String {
    match error.kind.as_str() {
        "attachment-too-large" => "Le fichier dépasse la taille maximale de 10 Mo.".into(),
        "attachment-type-not-allowed" => {
            format!("Ce type de fichier n'est pas accepté. Formats acceptés : {ALLOWED_TYPES}.")
        }
        "attachment-content-mismatch" => {
            "Le contenu du fichier ne correspond pas à son type (par exemple un fichier renommé) : il est refusé."
                .into()
        }
        "attachment-empty" => "Le fichier est vide.".into(),
        _ => match error.status {
            413 => "Le fichier dépasse la taille maximale de 10 Mo.".into(),
            _ => fr::problem(error),
        },
    }
}

/// Why an upload stopped before reaching the gateway's answer.
enum Stopped {
    TooLarge,
    Unreadable(String),
}

/// `POST /demandes/{id}/pieces` (multipart: `_csrf`, `retour`, `legende`, then `fichier`): the file is passed
/// on to the gateway chunk by chunk as the browser sends it.
pub async fn upload(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let mut f = Fields::new();
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !participant(&ctx) {
        return refused(&ctx);
    }
    let Some(id) = safe_id(&id).map(str::to_owned) else { return not_found(&ctx) };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                if let Err(r) = check_csrf(&ctx, &f) {
                    return r;
                }
                let back = back_to(forms::value(&f, "retour"), &id);
                let message = if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "Le fichier dépasse la taille maximale de 10 Mo.".to_owned()
                } else {
                    "Le fichier n'a pas pu être reçu : réessayez.".to_owned()
                };
                flash(&state, &ctx, format!("{ERROR_FLASH}{message}")).await;
                return see_other(&format!("{back}#conversation"));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "fichier" {
            // The small fields come first (the form's order); a long one is not a form of this site.
            match field.text().await {
                Ok(text) if text.len() <= 32 * 1024 => {
                    f.insert(name, text);
                }
                _ => {
                    return layout::error_page(
                        &ctx,
                        StatusCode::BAD_REQUEST,
                        "Formulaire invalide",
                        "Ce formulaire est invalide.",
                    );
                }
            }
            continue;
        }
        // The CSRF token precedes the file: check it before passing on a single byte.
        if let Err(r) = check_csrf(&ctx, &f) {
            return r;
        }
        let back = back_to(forms::value(&f, "retour"), &id);
        let legend = match check_message(f.get("legende").map(String::as_str).unwrap_or(""), false) {
            Ok(text) => text,
            Err(message) => {
                flash(&state, &ctx, format!("{ERROR_FLASH}{message}")).await;
                return see_other(&format!("{back}#conversation"));
            }
        };
        let filename = field.file_name().unwrap_or_default().trim().to_owned();
        if filename.is_empty() {
            flash(&state, &ctx, format!("{ERROR_FLASH}Choisissez un fichier à joindre.")).await;
            return see_other(&format!("{back}#conversation"));
        }
        let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
        let outcome = stream_to_gateway(&state, &token, &id, &content_type, &filename, &legend, field).await;
        let message = match outcome {
            Ok(Ok(_)) => format!("Votre fichier « {filename} » est envoyé."),
            Ok(Err(error)) => format!("{ERROR_FLASH}{}", attachment_problem(&error)),
            Err(Stopped::TooLarge) => format!("{ERROR_FLASH}Le fichier dépasse la taille maximale de 10 Mo."),
            Err(Stopped::Unreadable(e)) => {
                tracing::warn!(error = %e, "upload from the browser failed");
                format!("{ERROR_FLASH}Le fichier n'a pas pu être reçu : réessayez.")
            }
        };
        flash(&state, &ctx, message).await;
        return see_other(&format!("{back}#conversation"));
    }
    // No file field at all.
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    flash(&state, &ctx, format!("{ERROR_FLASH}Choisissez un fichier à joindre.")).await;
    see_other(&format!("{}#conversation", back_to(forms::value(&f, "retour"), &id)))
}

/// Pumps the browser's file into the gateway's upload through a small channel (at most a few chunks in
/// memory), both in this task. `Err` when the browser's side failed or went past the limit (the gateway's
/// call is then aborted by an error in its body).
async fn stream_to_gateway(
    state: &AppState,
    token: &str,
    id: &str,
    content_type: &str,
    filename: &str,
    legend: &str,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<Result<Value, crate::gateway::ApiError>, Stopped> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let path = format!("/v1/requests/{id}/attachments");
    let send = state.gateway.upload(&path, token, content_type, filename, legend, reqwest::Body::wrap_stream(chunks));
    let pump = async move {
        let mut total = 0usize;
        loop {
            match field.chunk().await {
                Ok(Some(bytes)) => {
                    total += bytes.len();
                    if total > MAX_ATTACHMENT_BYTES {
                        let _ = tx.send(Err(std::io::Error::other("attachment too large"))).await;
                        return Err(Stopped::TooLarge);
                    }
                    if tx.send(Ok(bytes)).await.is_err() {
                        // The gateway answered before the end (a refusal): its answer says why.
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => {
                    let too_large = error.status() == StatusCode::PAYLOAD_TOO_LARGE;
                    let _ = tx.send(Err(std::io::Error::other(error.to_string()))).await;
                    return Err(if too_large { Stopped::TooLarge } else { Stopped::Unreadable(error.to_string()) });
                }
            }
        }
    };
    let (sent, pumped) = tokio::join!(send, pump);
    pumped?;
    Ok(sent)
}

/// `GET /demandes/{id}/pieces/{piece}`: the attachment, streamed from the gateway with its type, size and name.
pub async fn download(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, piece)): Path<(String, String)>,
) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !participant(&ctx) {
        return refused(&ctx);
    }
    let (Some(id), Some(piece)) = (safe_id(&id), safe_id(&piece)) else {
        return prologue::not_found(&ctx, "Ce fichier n'existe pas.");
    };
    let upstream = match state.gateway.stream(&format!("/v1/requests/{id}/attachments/{piece}"), &token).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let copy = |name: header::HeaderName| upstream.headers().get(&name).cloned().map(|v| (name, v));
    let headers: Vec<_> = [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION, header::ETAG]
        .into_iter()
        .filter_map(copy)
        .collect();
    let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if !response.headers().contains_key(header::CONTENT_DISPOSITION) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "jeton".into(),
            user: None,
            flash: None,
            path: "/demandes/r1".into(),
            client_ip: None,
        }
    }

    #[test]
    fn posting_comes_back_only_to_a_page_of_this_request_or_a_referral() {
        assert_eq!(back_to("/demandes/r1", "r1"), "/demandes/r1");
        assert_eq!(back_to("/orientations/ref-9", "r1"), "/orientations/ref-9");
        for bad in
            ["https://evil.example/", "//evil.example", "/orientations/../x", "/demandes/r2", "", "/orientations/"]
        {
            assert_eq!(back_to(bad, "r1"), "/demandes/r1", "{bad}");
        }
    }

    #[test]
    fn messages_are_required_and_bounded() {
        assert_eq!(check_message("  Bonjour  ", true), Ok("Bonjour".into()));
        assert_eq!(check_message("  ", true), Err("Le champ « Votre message » est obligatoire.".into()));
        assert_eq!(check_message("", false), Ok(String::new()));
        assert!(check_message(&"é".repeat(MAX_MESSAGE_CHARS + 1), false).is_err_and(|m| m.contains("5000")));
        assert!(check_message(&"é".repeat(MAX_MESSAGE_CHARS), true).is_ok(), "characters, not bytes");
    }

    #[test]
    fn sizes_are_french() {
        assert_eq!(size(512), "512\u{a0}o");
        assert_eq!(size(1536), "1,5\u{a0}Ko");
        assert_eq!(size(10 * 1024 * 1024), "10,0\u{a0}Mo");
    }

    #[test]
    fn refusals_of_the_gateway_are_worded() {
        let error = |status, kind: &str| crate::gateway::ApiError {
            status,
            kind: kind.into(),
            detail: String::new(),
            errors: vec![],
        };
        assert!(attachment_problem(&error(413, "attachment-too-large")).contains("10 Mo"));
        assert!(attachment_problem(&error(400, "attachment-type-not-allowed")).contains("PDF, PNG"));
        assert!(attachment_problem(&error(400, "attachment-content-mismatch")).contains("ne correspond pas"));
        assert!(attachment_problem(&error(413, "")).contains("10 Mo"));
    }

    #[test]
    fn the_thread_shows_authors_escaped_and_links_attachments_through_the_portal() {
        let messages = vec![json!({
            "id": "m1", "author_name": "<Maire>", "author_role": "member_admin", "body": "Bonjour\n<b>",
            "created_at": "2026-11-29T08:15:00Z",
            "attachments": [{"id": "a1", "filename": "plan \"v2\".pdf", "content_type": "application/pdf", "size_bytes": 2048}]
        })];
        let html = render(&ctx(), "r1", "/demandes/r1", &messages, 2);
        assert!(html.contains("&lt;Maire&gt;") && html.contains("Administrateur de la collectivité"));
        assert!(html.contains("Bonjour<br>&lt;b&gt;"));
        assert!(html.contains(r#"<a href="/demandes/r1/pieces/a1" download>plan &quot;v2&quot;.pdf</a>"#));
        assert!(html.contains("2,0\u{a0}Ko"));
        assert!(html.contains("2 nouveaux messages"));
        assert!(html.contains(r#"enctype="multipart/form-data""#) && html.contains(r#"name="_csrf" value="jeton""#));
        assert!(html.contains("<legend>Joindre un fichier</legend>") && html.contains(r#"<label for="fichier">"#));
        // The CSRF field precedes the file, so the upload is checked before any byte is passed on.
        let form = &html[html.find("/pieces\"").unwrap_or(0)..];
        assert!(form.find("_csrf").unwrap_or(usize::MAX) < form.find("name=\"fichier\"").unwrap_or(0));
        assert!(render(&ctx(), "r1", "/demandes/r1", &[], 0).contains("Aucun message"));
    }
}
