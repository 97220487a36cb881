//! What every route module shares: the mapping of a failed upstream call to a problem, the 201 answer of a
//! creation, and the comparison of member ids.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::invalid_token;
use crate::problem::Problem;

/// Maps a failed gRPC call that carried the caller's token to a problem naming the service; a service that
/// refuses the token answers 401 `invalid_token`.
pub fn upstream(service: &'static str) -> impl FnOnce(tonic::Status) -> Problem {
    move |status| {
        let problem = Problem::from_upstream(service, &status);
        if problem.status == StatusCode::UNAUTHORIZED { invalid_token(problem.detail) } else { problem }
    }
}

/// Maps a failed anonymous gRPC call (public routes) to a problem naming the service.
pub fn upstream_public(service: &'static str) -> impl FnOnce(tonic::Status) -> Problem {
    move |status| Problem::from_upstream(service, &status)
}

/// 201 with `Location` and the created resource.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Whether an id from a service designates `member` (UUIDs compared as UUIDs, not as text).
pub fn same_member(id: &str, member: Uuid) -> bool {
    Uuid::parse_str(id).is_ok_and(|id| id == member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_compare_as_uuids() {
        let id = Uuid::now_v7();
        assert!(same_member(&id.to_string(), id));
        assert!(same_member(&id.to_string().to_uppercase(), id));
        assert!(same_member(&id.simple().to_string(), id));
        assert!(!same_member(&Uuid::now_v7().to_string(), id));
        assert!(!same_member("", id));
    }
}
