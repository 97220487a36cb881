//! `/v1/requests`: a member's users submit and follow their member's requests; a provider's agents read the
//! requests referred to them; referents read those of the members they follow; the coordinator reads any.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use id77_platform::auth::Role;
use id77_proto::requests::v1 as pb;
use serde::Deserialize;

use super::{created, same_member, upstream};
use crate::AppState;
use crate::auth::Authenticated;
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

/// A member's user submits a request; `member_id` is the caller's, never the body's.
pub async fn submit(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    let member_id = caller.own_member().ok_or_else(|| Problem::forbidden("only a member's users submit requests"))?;
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
    let request =
        state.requests().submit_request(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(created(format!("/v1/requests/{}", request.id), views::Request::from(request)))
}

/// The member's users, the provider it was referred to, the member's referent, the coordinator. Anyone else's
/// request is "not found", not "forbidden", so ids reveal nothing.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Request>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator])?;
    path_id("id", &id)?;
    let request = state
        .requests()
        .get_request(caller.grpc(pb::GetRequestRequest { id: id.clone() }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    // The referent's view is the service's to decide (it knows whom the referent follows).
    let visible = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&request.member_id)
        || caller.is_agent_of(&request.provider_code);
    if !visible {
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

/// A member's users list their member's requests (another member's list is "not found"); referents and the
/// coordinator list one member's (`?member_id=` required).
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Request>>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::Referent, Role::Coordinator])?;
    let mut checks = Checks::new();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let own = caller.own_member().filter(|own| asked.is_empty() || same_member(&asked, *own));
    let member_id = if caller.has(Role::Coordinator) || (own.is_none() && caller.has(Role::Referent)) {
        if asked.is_empty() {
            checks.fail("member_id", "is required for the coordinator and referents");
        }
        asked
    } else if let Some(own) = own {
        own.to_string()
    } else {
        checks.finish()?;
        return Err(Problem::not_found(format!("member {asked} not found")));
    };
    checks.finish()?;
    let request = pb::ListRequestsRequest { member_id, page_size, page_token };
    let response =
        state.requests().list_requests(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
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
