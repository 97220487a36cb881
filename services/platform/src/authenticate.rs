//! The caller of every gRPC call, extracted once: [`Authenticate`] is a tower layer of each service's gRPC server
//! that verifies the bearer token (signature, expiry, revocation) before any handler runs and leaves the outcome
//! in the request's extensions; handlers read it with [`CallerOf::caller`] (a token is required) or
//! [`CallerOf::optional_caller`] (anonymous calls allowed). A token that does not verify is refused by either.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::auth::{Authenticator, Caller, unauthenticated};
use crate::error::ServiceError;

/// What the layer found: no token, a verified caller, or why the token was refused.
#[derive(Debug, Clone)]
pub enum Authentication {
    Anonymous,
    Caller(Caller),
    Refused(ServiceError),
}

/// The layer: wrap a gRPC server's routes with it ([`crate::grpc::serve`] does, for every service).
#[derive(Clone)]
pub struct AuthenticateLayer {
    auth: Authenticator,
}

impl AuthenticateLayer {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate { inner, auth: self.auth.clone() }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Authenticator,
}

/// The bearer token of an HTTP/2 request's `authorization` header (gRPC metadata), if any.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<S, B, R> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let outcome = match bearer(request.headers()) {
                None => Authentication::Anonymous,
                Some(token) => match auth.verify(token).await {
                    Ok(caller) => Authentication::Caller(caller),
                    Err(refused) => Authentication::Refused(refused),
                },
            };
            request.extensions_mut().insert(outcome);
            inner.call(request).await
        })
    }
}

/// The caller of a gRPC request, as [`Authenticate`] found it.
pub trait CallerOf {
    /// The verified caller; UNAUTHENTICATED without a valid bearer token.
    fn caller(&self) -> Result<Caller, ServiceError>;
    /// The caller if the request carries a token (which must then be valid), `None` for an anonymous call.
    fn optional_caller(&self) -> Result<Option<Caller>, ServiceError>;
}

impl<T> CallerOf for tonic::Request<T> {
    fn caller(&self) -> Result<Caller, ServiceError> {
        self.optional_caller()?.ok_or_else(|| unauthenticated("no bearer token"))
    }

    fn optional_caller(&self) -> Result<Option<Caller>, ServiceError> {
        match self.extensions().get::<Authentication>() {
            Some(Authentication::Caller(caller)) => Ok(Some(caller.clone())),
            Some(Authentication::Refused(error)) => Err(error.clone()),
            Some(Authentication::Anonymous) => Ok(None),
            // A server built without the layer: refuse rather than let a call through unchecked.
            None => Err(ServiceError::internal("authenticating", "the gRPC server has no authentication layer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header_only() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("basic abc"));
        assert_eq!(bearer(&headers), None);
        // An empty token is a token that does not verify (refused), not an anonymous call.
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("bearer  "));
        assert_eq!(bearer(&headers), Some(""));
    }

    #[test]
    fn a_request_without_the_layer_is_refused_not_let_through() {
        let request = tonic::Request::new(());
        assert!(request.caller().is_err());
        assert!(request.optional_caller().is_err());
        let mut anonymous = tonic::Request::new(());
        anonymous.extensions_mut().insert(Authentication::Anonymous);
        assert!(anonymous.optional_caller().is_ok_and(|c| c.is_none()));
        assert_eq!(anonymous.caller().map_err(|e| e.code).err(), Some(crate::ErrorCode::Unauthenticated));
    }
}
