//! What a handler checks before its use case, in one place and always in the same order: the CSRF token of a
//! POST form (403 « Formulaire expiré »), then the caller's token (the sign-in page, or 403 for another role),
//! then the id of the path (404 « Introuvable »). Each step answers the page to return instead (`Err`).
//!
//! The token is given as a future (`caller::token(&state, &ctx)`, `caller::coordinator_token(…)`, a screen's own
//! role check…): a future does nothing until awaited, so a POST with a wrong CSRF token never touches the session.

use std::future::Future;

use axum::http::StatusCode;
use axum::response::Response;

use super::common::safe_id;
use crate::caller::check_csrf;
use crate::forms::Fields;
use crate::{Ctx, layout};

/// The 404 page « Introuvable » that says `what` does not exist.
pub fn not_found(ctx: &Ctx, what: &str) -> Response {
    layout::error_page(ctx, StatusCode::NOT_FOUND, "Introuvable", what)
}

/// `id` when it may be put in a gateway path; else the 404 page saying `what` (« Cette session n'existe pas. »).
pub fn path_id<'a>(ctx: &Ctx, id: &'a str, what: &str) -> Result<&'a str, Response> {
    safe_id(id).ok_or_else(|| not_found(ctx, what))
}

/// The prologue of a POST: its form's CSRF token, then what the screen needs of its caller (its token, or the
/// collectivité a form is about), awaited only once the form is known to come from this site.
pub async fn post<T>(ctx: &Ctx, f: &Fields, needs: impl Future<Output = Result<T, Response>>) -> Result<T, Response> {
    check_csrf(ctx, f)?;
    needs.await
}

/// The prologue of a screen on one thing of the path: the caller's token, then the id (404 saying `what`).
pub async fn with_id<'a>(
    ctx: &Ctx,
    token: impl Future<Output = Result<String, Response>>,
    id: &'a str,
    what: &str,
) -> Result<(String, &'a str), Response> {
    let token = token.await?;
    Ok((token, path_id(ctx, id, what)?))
}

/// The prologue of a POST on one thing of the path: the CSRF token, the caller's token, then the id.
pub async fn post_with_id<'a>(
    ctx: &Ctx,
    f: &Fields,
    token: impl Future<Output = Result<String, Response>>,
    id: &'a str,
    what: &str,
) -> Result<(String, &'a str), Response> {
    check_csrf(ctx, f)?;
    with_id(ctx, token, id, what).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::to_bytes;

    use super::*;
    use crate::layout::tests::ctx;
    use crate::session::CSRF_FIELD;

    fn form(csrf: &str) -> Fields {
        [(CSRF_FIELD.to_owned(), csrf.to_owned())].into()
    }

    async fn text(response: Response) -> String {
        String::from_utf8(to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default().to_vec())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_wrong_csrf_token_is_refused_before_the_session_is_read() {
        let ctx = ctx(Some("member_user"), "/inscriptions/r1/annuler");
        let asked = AtomicBool::new(false);
        let token = async {
            asked.store(true, Ordering::SeqCst);
            Ok("t".to_owned())
        };
        let Err(refused) = post_with_id(&ctx, &form("autre"), token, "r1", "Cette inscription n'existe pas.").await
        else {
            panic!("a wrong CSRF token must be refused");
        };
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(!asked.load(Ordering::SeqCst), "the caller's token is not asked for");
        assert!(text(refused).await.contains("Formulaire expiré"));
        let Err(refused) = post(&ctx, &Fields::new(), async { Ok("t".to_owned()) }).await else {
            panic!("a form without a CSRF token must be refused");
        };
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn an_id_that_could_change_the_gateway_path_is_not_found() {
        let ctx = ctx(Some("member_user"), "/sessions/x/avis");
        for bad in ["../v1/users", "a/b", ""] {
            let Err(page) =
                post_with_id(&ctx, &form("c"), async { Ok("t".to_owned()) }, bad, "Cette session n'existe pas.").await
            else {
                panic!("{bad} must be refused");
            };
            assert_eq!(page.status(), StatusCode::NOT_FOUND);
            let html = text(page).await;
            assert!(html.contains("Introuvable") && html.contains("Cette session n&#39;existe pas."), "{html}");
        }
    }

    #[tokio::test]
    async fn the_callers_refusal_comes_before_the_id_check() {
        let ctx = ctx(None, "/sessions/x/avis");
        let signin = || async { Err(layout::see_other("/connexion")) };
        let Err(page) = post_with_id(&ctx, &form("c"), signin(), "a/b", "Cette session n'existe pas.").await else {
            panic!("without a session the caller signs in");
        };
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        let Err(page) = with_id(&ctx, signin(), "a/b", "Cette session n'existe pas.").await else {
            panic!("without a session the caller signs in");
        };
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn a_good_form_gives_the_token_and_the_id() {
        let ctx = ctx(Some("member_user"), "/sessions/s-1/avis");
        let found = post_with_id(&ctx, &form("c"), async { Ok("jeton".to_owned()) }, "s-1", "x").await;
        assert_eq!(found.ok(), Some(("jeton".to_owned(), "s-1")));
        let found = post(&ctx, &form("c"), async { Ok("jeton".to_owned()) }).await;
        assert_eq!(found.ok().as_deref(), Some("jeton"));
        assert_eq!(path_id(&ctx, "77288", "x").ok(), Some("77288"));
    }
}
