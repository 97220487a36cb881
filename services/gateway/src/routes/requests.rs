//! `/v1/requests`: members submit and follow their requests; the coordinator and operators read any.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use id77_proto::requests::v1 as pb;
use serde::Deserialize;

use super::{created, same_member, upstream};
use crate::AppState;
use crate::auth::{Identity, Role};
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[derive(Debug, Deserialize)]
pub struct Submission {
    offer_id: Option<String>,
    subject: Option<String>,
    description: Option<String>,
}

/// The optional `Idempotency-Key` header: visible ASCII, at most 128 characters; empty when absent.
pub fn idempotency_key(headers: &HeaderMap, checks: &mut Checks) -> String {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return String::new();
    };
    match value.to_str() {
        Ok(key) => {
            let key = key.trim();
            if key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
                checks.fail("Idempotency-Key", format!("must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"));
            }
            key.to_owned()
        }
        Err(_) => {
            checks.fail("Idempotency-Key", "must be visible ASCII");
            String::new()
        }
    }
}

/// A member submits a request; `member_id` is the caller's, never the body's.
pub async fn submit(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<Response, Problem> {
    let member_id = identity.require_member()?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let offer_id = checks.required("offer_id", body.offer_id, MAX_ID_CHARS);
    let subject = checks.required("subject", body.subject, MAX_SUBJECT_CHARS);
    let description = checks.optional("description", body.description, MAX_DESCRIPTION_CHARS);
    let idempotency_key = idempotency_key(&headers, &mut checks);
    checks.finish()?;
    let request = pb::SubmitRequestRequest {
        member_id: member_id.to_string(),
        offer_id: offer_id.trim().to_owned(),
        subject,
        description,
        idempotency_key,
    };
    let request = state.requests().submit_request(request).await.map_err(upstream("requests"))?.into_inner();
    Ok(created(format!("/v1/requests/{}", request.id), views::Request::from(request)))
}

/// The owning member, the coordinator, operators. Another member's request is "not found", not "forbidden",
/// so ids reveal nothing.
pub async fn get(
    State(state): State<AppState>,
    identity: Identity,
    P(id): P<String>,
) -> Result<Json<views::Request>, Problem> {
    identity.require(&[Role::Member, Role::Coordinator, Role::Operator])?;
    path_id("id", &id)?;
    let request = state
        .requests()
        .get_request(pb::GetRequestRequest { id: id.clone() })
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    if let Identity::Member(own) = identity
        && !same_member(&request.member_id, own)
    {
        return Err(Problem::not_found(format!("request {id} not found")));
    }
    Ok(Json(request.into()))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    member_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A member lists its own requests; the coordinator and operators list one member's (`?member_id=` required).
pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Request>>, Problem> {
    identity.require(&[Role::Member, Role::Coordinator, Role::Operator])?;
    let mut checks = Checks::new();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let member_id = match identity {
        Identity::Member(own) => {
            if !asked.is_empty() && !same_member(&asked, own) {
                return Err(Problem::forbidden("a member may only list its own requests"));
            }
            own.to_string()
        }
        _ => {
            if asked.is_empty() {
                checks.fail("member_id", "is required for the coordinator and operators");
            }
            asked
        }
    };
    checks.finish()?;
    let request = pb::ListRequestsRequest { member_id, page_size, page_token };
    let response = state.requests().list_requests(request).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(Page::new(response.requests, response.next_page_token)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn idempotency_keys_are_optional_and_bounded() {
        let mut headers = HeaderMap::new();
        let mut checks = Checks::new();
        assert_eq!(idempotency_key(&headers, &mut checks), "");
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123"));
        assert_eq!(idempotency_key(&headers, &mut checks), "abc-123");
        assert!(checks.finish().is_ok());

        let mut checks = Checks::new();
        if let Ok(long) = HeaderValue::from_str(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)) {
            headers.insert(IDEMPOTENCY_KEY, long);
        }
        idempotency_key(&headers, &mut checks);
        let problem = checks.finish().err();
        assert_eq!(problem.map(|p| p.errors[0].field.clone()).as_deref(), Some("Idempotency-Key"));

        let mut checks = Checks::new();
        if let Ok(binary) = HeaderValue::from_bytes(b"caf\xe9") {
            headers.insert(IDEMPOTENCY_KEY, binary);
        }
        idempotency_key(&headers, &mut checks);
        assert!(checks.finish().is_err());
    }
}
