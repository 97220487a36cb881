//! The unread count of the header (« Notifications (3) », issue 21): on every page (GET) of a signed-in user,
//! [`unread_layer`] asks the gateway for the count only (`GET /v1/notifications?limit=0`, one light call per page)
//! and [`nav_entry`] renders the header's entry for [`PATH`] (the page itself is `super::notifications`).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::{AppState, Ctx};

/// The notifications page.
pub const PATH: &str = "/notifications";

tokio::task_local! {
    /// The signed-in caller's unread count for the page being rendered (unset or `None`: not known).
    static UNREAD: Option<u32>;
}

/// The unread count of the page being rendered, if [`unread_layer`] could fetch it.
pub fn unread() -> Option<u32> {
    UNREAD.try_with(|n| *n).ok().flatten()
}

/// For a page (GET) of a signed-in user whose access token is still fresh, fetches its unread count (only the
/// count) and renders the page with it; any failure only leaves the count out. A stale token is left to the
/// page's own call to refresh (the next page shows the count).
pub async fn unread_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ctx = request.extensions().get::<Ctx>().cloned();
    let count = match ctx {
        Some(ctx) if request.method() == Method::GET && ctx.user.is_some() => count(&state, &ctx).await,
        _ => None,
    };
    UNREAD.scope(count, next.run(request)).await
}

async fn count(state: &AppState, ctx: &Ctx) -> Option<u32> {
    let session = state.sessions.get(&ctx.sid).await.ok()??;
    let tokens = session.tokens?;
    if tokens.stale(chrono::Utc::now()) {
        return None;
    }
    let answer = state.gateway.get("/v1/notifications?limit=0", Some(&tokens.access)).await.ok()?;
    answer["unread_count"].as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The header's entry for the notifications page, with the unread count when known (`""` when signed out).
pub fn nav_entry(ctx: &Ctx) -> String {
    if ctx.user.is_none() {
        return String::new();
    }
    entry(unread(), ctx.path.split('?').next() == Some(PATH))
}

fn entry(unread: Option<u32>, current: bool) -> String {
    let aria = if current { r#" aria-current="page""# } else { "" };
    let count = match unread {
        Some(n) if n > 0 => {
            format!(r#" <span class="unread">({n}<span class="visually-hidden"> non lues</span>)</span>"#)
        }
        _ => String::new(),
    };
    format!(r#"<li><a href="{PATH}"{aria}>Notifications{count}</a></li>"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_badge_shows_the_unread_count_with_a_hidden_word() {
        let html = entry(Some(3), false);
        assert_eq!(
            html,
            r#"<li><a href="/notifications">Notifications <span class="unread">(3<span class="visually-hidden"> non lues</span>)</span></a></li>"#
        );
        assert_eq!(entry(Some(0), false), r#"<li><a href="/notifications">Notifications</a></li>"#);
        assert_eq!(entry(None, true), r#"<li><a href="/notifications" aria-current="page">Notifications</a></li>"#);
    }

    #[tokio::test]
    async fn the_count_is_the_one_fetched_for_the_page_being_rendered() {
        assert_eq!(unread(), None, "outside a page: no count");
        let inside = UNREAD.scope(Some(4), async { unread() }).await;
        assert_eq!(inside, Some(4));
        let mut ctx = crate::layout::tests::ctx(Some("provider_agent"), "/orientations");
        let html = UNREAD.scope(Some(2), async { nav_entry(&ctx) }).await;
        assert!(html.contains("Notifications <span class=\"unread\">(2<span class=\"visually-hidden\"> non lues"));
        ctx.user = None;
        assert_eq!(UNREAD.scope(Some(2), async { nav_entry(&ctx) }).await, "");
    }
}
