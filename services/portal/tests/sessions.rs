//! Portal sessions in PostgreSQL (ADR 0009, addendum): a session written by one portal is read by another, survives
//! a restart of every portal, expires when idle on every replica, and logging out revokes it everywhere.
//!
//! Each test gets a fresh database (the platform's testing helpers) and runs real portals (`id77_portal::run` on
//! bound listeners, as the binary does). Their only upstream, the gateway, is a small fake answering the few
//! endpoints these journeys use (login, `/v1/me`, refresh with single-use refresh tokens, logout, and an empty
//! page for any other GET with a valid token). Two portals stand behind one address through a round-robin TCP
//! front: each request is a new connection, so consecutive requests of one browser alternate between them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use id77_platform::testing::{drop_database, fresh_database_url};
use id77_portal::Config;
use id77_portal::session::{self, Sessions, Tokens, User};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "Correct-Horse-77!";
const HOME_SIGNED_IN: &str = "<h2>Coordination</h2>";

// --- A fake gateway ----------------------------------------------------------------------------------------------

#[derive(Default)]
struct GatewayState {
    /// Access tokens currently valid.
    access: HashSet<String>,
    /// Refresh tokens not used yet (single-use, like membership's).
    refresh: HashSet<String>,
    issued: usize,
    /// `expires_in` of the next pairs.
    expires_in: i64,
    refreshes: usize,
    /// A refresh token presented twice (membership would revoke the family).
    reuses: usize,
    logged_out: Vec<String>,
}

type Shared = Arc<Mutex<GatewayState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, GatewayState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pair(state: &mut GatewayState) -> Value {
    state.issued += 1;
    let (access, refresh) = (format!("access-{}", state.issued), format!("refresh-{}", state.issued));
    state.access.insert(access.clone());
    state.refresh.insert(refresh.clone());
    json!({ "access_token": access, "refresh_token": refresh, "expires_in": state.expires_in, "token_type": "Bearer" })
}

fn problem(status: StatusCode) -> Response {
    (status, [("content-type", "application/problem+json")], json!({ "title": "refused" }).to_string()).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_owned)
}

async fn issue(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    if body["password"] != PASSWORD {
        return problem(StatusCode::UNAUTHORIZED);
    }
    Json(pair(&mut lock(&state))).into_response()
}

async fn refresh(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let presented = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    // A slow refresh widens the window in which another replica could present the same token.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut state = lock(&state);
    if !state.refresh.remove(&presented) {
        state.reuses += 1;
        return problem(StatusCode::UNAUTHORIZED);
    }
    state.refreshes += 1;
    state.expires_in = 900;
    Json(pair(&mut state)).into_response()
}

async fn logout(State(state): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    let mut state = lock(&state);
    let token = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    state.refresh.remove(&token);
    state.logged_out.push(token);
    StatusCode::NO_CONTENT
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer(&headers).is_some_and(|t| lock(&state).access.contains(&t)) {
        return problem(StatusCode::UNAUTHORIZED);
    }
    Json(json!({ "user": { "id": "u-coord", "email": "coordination@id77.test", "display_name": "Camille Coordination",
                           "role": "coordinator" } }))
    .into_response()
}

/// Any other GET: an empty page, for a valid token or none.
async fn anything(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = bearer(&headers)
        && !lock(&state).access.contains(&token)
    {
        return problem(StatusCode::UNAUTHORIZED);
    }
    Json(json!({ "items": [], "total": 0 })).into_response()
}

async fn fake_gateway(expires_in: i64) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(GatewayState { expires_in, ..GatewayState::default() }));
    let app = Router::new()
        .route("/v1/auth/token", post(issue))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/me", get(me))
        .fallback(get(anything))
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake gateway");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

// --- Portals, and one address in front of two -------------------------------------------------------------------

struct Portal {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Portal {
    /// Starts a portal on `addr` (port 0: any) and waits until it answers.
    async fn start(config: &Config, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the portal");
        let addr = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(id77_portal::run(config.clone(), listener, shutdown.clone()));
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("http://{addr}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Self { addr, shutdown, task };
            }
            assert!(!task.is_finished(), "the portal stopped at start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the portal on {addr} did not answer");
    }

    /// Stops it as SIGTERM would, and waits until it has.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("portal task").expect("portal stopped cleanly");
    }
}

/// A round-robin TCP front: connection n goes to backend n mod len.
struct Front {
    addr: SocketAddr,
    served: Arc<Vec<AtomicUsize>>,
}

async fn front(backends: Vec<SocketAddr>) -> Front {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the front");
    let addr = listener.local_addr().expect("address");
    let served: Arc<Vec<AtomicUsize>> = Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
    let counters = served.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let i = next % backends.len();
            next += 1;
            counters[i].fetch_add(1, Ordering::SeqCst);
            let backend = backends[i];
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Front { addr, served }
}

// --- A browser ---------------------------------------------------------------------------------------------------

/// One browser: keeps the session cookie, follows no redirect, opens a new connection for every request.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Browser {
    fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Self { client, cookie: None }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(id) => request.header("cookie", format!("{}={id}", session::COOKIE)),
            None => request,
        };
        let response = request.send().await.expect("the portal answers");
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap_or_default();
            if let Some(id) = session::cookie_value(value.split(';').next().unwrap_or_default(), false) {
                self.cookie = Some(id.to_owned());
            }
        }
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Page { status, location, body: response.text().await.unwrap_or_default() }
    }

    async fn get(&mut self, at: SocketAddr, path: &str) -> Page {
        let request = self.client.get(format!("http://{at}{path}"));
        self.send(request).await
    }

    async fn post(&mut self, at: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("http://{at}{path}")).form(fields);
        self.send(request).await
    }

    /// Signs in through the login form (GET then POST, possibly on different portals).
    async fn sign_in(&mut self, form_at: SocketAddr, post_at: SocketAddr) {
        let form = self.get(form_at, "/connexion").await;
        let csrf = csrf_of(&form.body);
        let done = self
            .post(
                post_at,
                "/connexion",
                &[("_csrf", &csrf), ("email", "coordination@id77.test"), ("password", PASSWORD), ("suite", "/")],
            )
            .await;
        assert_eq!((done.status, done.location.as_str()), (StatusCode::SEE_OTHER, "/"), "signed in: {}", done.body);
    }

    async fn signed_in(&mut self, at: SocketAddr) -> bool {
        let home = self.get(at, "/").await;
        assert_eq!(home.status, StatusCode::OK);
        home.body.contains(HOME_SIGNED_IN)
    }
}

fn csrf_of(body: &str) -> String {
    let marker = r#"name="_csrf" value=""#;
    let start = body.find(marker).expect("a form with a CSRF token") + marker.len();
    body[start..].split('"').next().unwrap_or_default().to_owned()
}

async fn config(gateway: &str, database_url: &str) -> Config {
    Config::for_gateway(gateway, database_url)
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// --- Tests -------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_portals_behind_one_address_serve_one_session_alternately_and_it_survives_their_restart() {
    let db = fresh_database_url("portal_shared");
    let (gateway, gateway_state) = fake_gateway(900).await;
    let config = config(&gateway, &db).await;
    let (a, b) = (Portal::start(&config, any_port()).await, Portal::start(&config, any_port()).await);
    let (a_addr, b_addr) = (a.addr, b.addr);
    let front = front(vec![a_addr, b_addr]).await;
    let mut browser = Browser::new();

    // The login form from one portal, posted to the other (the front alternates): the CSRF token holds.
    browser.sign_in(front.addr, front.addr).await;
    let welcome = browser.get(front.addr, "/").await;
    assert!(welcome.body.contains(HOME_SIGNED_IN) && welcome.body.contains("Bienvenue, Camille Coordination."));
    let again = browser.get(front.addr, "/").await;
    assert!(again.body.contains(HOME_SIGNED_IN));
    assert!(!again.body.contains("Bienvenue, Camille"), "a one-time message is shown once, whichever portal");
    for _ in 0..4 {
        assert!(browser.signed_in(front.addr).await, "every request, on either portal, is signed in");
    }
    let served: Vec<usize> = front.served.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(served.iter().all(|&n| n >= 4), "both portals served this browser: {served:?}");

    // The database keeps neither the cookie nor the gateway's tokens in clear.
    let cookie = browser.cookie.clone().expect("a session cookie");
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let rows: Vec<(Vec<u8>, Vec<u8>, bool)> =
        sqlx::query_as("SELECT id_hash, sealed, signed_in FROM portal_session").fetch_all(&pool).await.expect("rows");
    assert_eq!(rows.len(), 1, "one row: the signed-in session (the visitor before it had none)");
    let (hash, sealed, signed_in) = &rows[0];
    assert!(signed_in);
    assert_eq!(hash, &session::id_hash(&cookie), "keyed by the SHA-256 of the cookie");
    let stored = String::from_utf8_lossy(sealed);
    assert!(!stored.contains(&cookie) && !stored.contains("refresh-1") && !stored.contains("access-1"));
    pool.close().await;

    // Every portal process stops and starts again on the same addresses: the same browser is still signed in.
    a.stop().await;
    b.stop().await;
    let (a, b) = (Portal::start(&config, a_addr).await, Portal::start(&config, b_addr).await);
    for _ in 0..4 {
        assert!(browser.signed_in(front.addr).await, "still signed in after the restart");
    }
    // And the gateway token it holds still works on a page that calls the gateway, on both.
    for _ in 0..2 {
        let triage = browser.get(front.addr, "/coordination/triage").await;
        assert_eq!(triage.status, StatusCode::OK, "{}", triage.body);
    }
    assert_eq!(lock(&gateway_state).reuses, 0);
    a.stop().await;
    b.stop().await;
    drop_database(&db).await;
}

#[tokio::test]
async fn logging_out_on_one_portal_revokes_the_session_on_the_other() {
    let db = fresh_database_url("portal_logout");
    let (gateway, gateway_state) = fake_gateway(900).await;
    let config = config(&gateway, &db).await;
    let (a, b) = (Portal::start(&config, any_port()).await, Portal::start(&config, any_port()).await);
    let mut browser = Browser::new();
    browser.sign_in(a.addr, a.addr).await;
    let signed_in_cookie = browser.cookie.clone().expect("cookie");
    assert!(browser.signed_in(b.addr).await);
    assert!(browser.signed_in(a.addr).await);

    // A copy of the cookie (another tab, or a thief) is the same session until the logout.
    let mut copy = Browser::new();
    copy.cookie = Some(signed_in_cookie.clone());
    assert!(copy.signed_in(a.addr).await);

    let home = browser.get(b.addr, "/").await;
    let out = browser.post(b.addr, "/deconnexion", &[("_csrf", &csrf_of(&home.body))]).await;
    assert_eq!((out.status, out.location.as_str()), (StatusCode::SEE_OTHER, "/connexion"));
    assert_ne!(browser.cookie.as_deref(), Some(signed_in_cookie.as_str()), "a new (anonymous) cookie");
    let farewell = browser.get(a.addr, "/connexion").await;
    assert!(farewell.body.contains("Vous êtes déconnecté."), "the message set on b is shown by a");
    assert!(!browser.signed_in(a.addr).await && !browser.signed_in(b.addr).await);
    for at in [a.addr, b.addr] {
        assert!(!copy.signed_in(at).await, "the old cookie opens nothing on any portal");
        let page = copy.get(at, "/coordination/triage").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "a page needing a session sends to the login");
        assert!(page.location.starts_with("/connexion"));
    }
    assert_eq!(lock(&gateway_state).logged_out, vec!["refresh-1".to_owned()], "the refresh family is revoked too");
    let sessions = Sessions::new(id77_portal::connect_database(&config).await.expect("db"), config.session_idle);
    assert_eq!(sessions.count().await.expect("count"), 0, "no row left (the farewell message was taken)");
    a.stop().await;
    b.stop().await;
    drop_database(&db).await;
}

#[tokio::test]
async fn an_idle_session_is_refused_by_every_portal_and_swept_while_an_active_one_lives_on() {
    let db = fresh_database_url("portal_idle");
    let (gateway, _) = fake_gateway(900).await;
    let mut config = config(&gateway, &db).await;
    config.session_idle = Duration::from_secs(2);
    let (a, b) = (Portal::start(&config, any_port()).await, Portal::start(&config, any_port()).await);

    // Active: a page every 0.4 s for 4 s, alternately on a and b (last_seen slides on the database's clock).
    let mut active = Browser::new();
    active.sign_in(a.addr, b.addr).await;
    let mut idle = Browser::new();
    idle.sign_in(b.addr, a.addr).await;
    for i in 0..10 {
        let at = if i % 2 == 0 { a.addr } else { b.addr };
        assert!(active.signed_in(at).await, "an active session does not expire (request {i})");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Idle for more than 2 s: refused by both, and a stale row cannot be revived by a write.
    assert!(!idle.signed_in(a.addr).await && !idle.signed_in(b.addr).await, "an idle session is refused");
    let sessions = Sessions::new(id77_portal::connect_database(&config).await.expect("db"), config.session_idle);
    let idle_id = idle.cookie.clone().expect("cookie");
    sessions.update(&idle_id, |s| s.flash = Some("note".into())).await;
    let revived = sessions.get(&idle_id).await.expect("read").expect("a row with the message");
    assert_eq!((revived.user, revived.tokens), (None, None), "writing to an expired session does not revive it");
    sessions.remove(&idle_id).await.expect("remove");

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(sessions.sweep().await.expect("sweep"), 1, "the sweeper deletes the expired session");
    assert_eq!(sessions.count().await.expect("count"), 0);
    a.stop().await;
    b.stop().await;
    drop_database(&db).await;
}

#[tokio::test]
async fn a_stale_access_token_is_refreshed_once_even_when_both_portals_need_it_at_the_same_time() {
    let db = fresh_database_url("portal_refresh");
    // The first pair is already stale (expires_in 0): the next page must refresh it; refreshed pairs last 900 s.
    let (gateway, gateway_state) = fake_gateway(0).await;
    let config = config(&gateway, &db).await;
    let (a, b) = (Portal::start(&config, any_port()).await, Portal::start(&config, any_port()).await);
    let mut browser = Browser::new();
    browser.sign_in(a.addr, a.addr).await;
    let cookie = browser.cookie.clone().expect("cookie");

    let mut pages = Vec::new();
    for i in 0..6 {
        let at = if i % 2 == 0 { a.addr } else { b.addr };
        let mut tab = Browser::new();
        tab.cookie = Some(cookie.clone());
        pages.push(tokio::spawn(async move { tab.get(at, "/coordination/triage").await }));
    }
    for page in pages {
        let page = page.await.expect("task");
        assert_eq!(page.status, StatusCode::OK, "served with a fresh token, not sent to the login ({})", page.location);
    }
    let (refreshes, reuses) = {
        let state = lock(&gateway_state);
        (state.refreshes, state.reuses)
    };
    assert_eq!((refreshes, reuses), (1, 0), "one refresh, no refresh token presented twice");
    assert!(browser.signed_in(b.addr).await);
    a.stop().await;
    b.stop().await;
    drop_database(&db).await;
}

#[tokio::test]
async fn the_store_rotates_ids_at_sign_in_and_keeps_no_row_for_visitors() {
    let db = fresh_database_url("portal_store");
    let config = Config::for_gateway("http://127.0.0.1:9", &db);
    let sessions = Sessions::new(id77_portal::connect_database(&config).await.expect("db"), config.session_idle);

    // A visitor: a cookie, a CSRF token, no row.
    let (visitor, anonymous, created) = sessions.load_or_create(None).await.expect("load");
    assert!(created && anonymous.user.is_none());
    assert_eq!(sessions.count().await.expect("count"), 0, "a visitor costs no row");
    let (again, same, created) = sessions.load_or_create(Some(&visitor)).await.expect("load");
    assert!(!created);
    assert_eq!((again.as_str(), same.csrf.as_str()), (visitor.as_str(), anonymous.csrf.as_str()));
    let (other, _, created) = sessions.load_or_create(Some("forged id; not ours")).await.expect("load");
    assert!(created && other != "forged id; not ours", "a malformed id is replaced");

    // Signing in: a new id (so a new CSRF token), the old one gone.
    sessions.update(&visitor, |s| s.flash = Some("avant".into())).await;
    assert_eq!(sessions.count().await.expect("count"), 1);
    let user = User {
        id: "u1".into(),
        email: "dgs@meaux.fr".into(),
        display_name: "DGS".into(),
        role: "member_admin".into(),
        member_id: Some("m1".into()),
        provider_code: None,
    };
    let tokens = Tokens::new("a".into(), 600, "r".into());
    let signed = sessions.sign_in(&visitor, user.clone(), tokens.clone()).await.expect("sign in");
    assert_ne!(signed, visitor);
    assert!(sessions.get(&visitor).await.expect("read").is_none(), "the pre-login session is gone");
    let after = sessions.get(&signed).await.expect("read").expect("signed-in session");
    assert_ne!(after.csrf, anonymous.csrf);
    assert_eq!((after.user, after.tokens), (Some(user), Some(tokens)));
    assert_eq!(sessions.take_flash(&signed).await.expect("flash"), None);
    sessions.update(&signed, |s| s.flash = Some("Bienvenue".into())).await;
    assert_eq!(sessions.take_flash(&signed).await.expect("flash").as_deref(), Some("Bienvenue"));
    assert_eq!(sessions.take_flash(&signed).await.expect("flash"), None, "taken once");
    let removed = sessions.remove(&signed).await.expect("remove").expect("it held something");
    assert_eq!(removed.tokens.map(|t| t.refresh).as_deref(), Some("r"));
    assert_eq!(sessions.count().await.expect("count"), 0);
    sessions.pool().close().await;
    drop_database(&db).await;
}
