//! The pages every answer links to (legal notice, accessibility statement, site map, contact) and the favicon,
//! served by a real portal (`id77_portal::run`, its own fresh database). None of them calls the gateway: the
//! gateway address given points nowhere.

use std::time::Duration;

use id77_platform::testing::{drop_database, fresh_database_url};
use id77_portal::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_footer_pages_and_the_favicon_are_served_to_everyone() {
    let db = fresh_database_url("portal_site_pages");
    let config = Config::for_gateway("http://127.0.0.1:9", &db);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the portal");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_portal::run(config, listener, shutdown.clone()));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("http://{addr}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the portal answers");

    let icon = client.get(format!("http://{addr}/static/favicon.svg")).send().await.expect("favicon");
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.expect("svg").starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));

    for (path, h1) in [
        ("/mentions-legales", "Mentions légales"),
        ("/accessibilite", "Déclaration d&#39;accessibilité"),
        ("/plan-du-site", "Plan du site"),
        ("/contact", "Contact"),
    ] {
        let page = client.get(format!("http://{addr}{path}")).send().await.expect("page");
        assert_eq!(page.status(), 200, "{path}");
        let body = page.text().await.expect("body");
        assert!(body.contains(&format!("<h1>{h1}</h1>")), "{path}: {body}");
        assert!(body.contains(r#"<meta name="description" content=""#), "{path}");
        assert!(body.contains(r#"<a href="/accessibilite">Accessibilité : partiellement conforme</a>"#), "{path}");
        assert!(body.contains(r#"<link rel="icon" href="/static/favicon.svg""#), "{path}");
    }

    shutdown.cancel();
    task.await.expect("portal task").expect("portal stopped cleanly");
    drop_database(&db).await;
}
