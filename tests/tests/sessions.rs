//! Issue 22's end-to-end "Done when", through the gateway and the real binaries: a provider's agent schedules a
//! session of a training offer with two seats; two members register three participants (A two, B one: B's is
//! waitlisted); A cancels one of its own and B's participant is promoted, with the promotion mail in the SMTP
//! sink; the session's calendar and B's personal feed are read by a third-party iCalendar parser (PyPI
//! `icalendar`, `tests/calendar/check_ics.py`), time zone included; once the session has started the agent
//! prints the attendance sheet and records who came; the participant who came gets an attestation de présence
//! (a PDF whose text pypdf reads back); the member rates the session. Along the way, a member sees only its own
//! registrations and cannot fetch another member's attestation.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use id77_e2e::{Api, DEMO_PASSWORD, Platform, eventually, onboard_member, workspace_root};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// How long after scheduling the session starts: registrations and cancellations happen before (they close at
/// the start), attendance after (it needs a started session).
const LEAD: Duration = Duration::from_secs(45);

/// A downloaded document: status, headers and bytes.
async fn download(
    api: &Api,
    path_or_url: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let url =
        if path_or_url.starts_with("http") { path_or_url.to_owned() } else { format!("{}{path_or_url}", api.base) };
    let mut request = api.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("download");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("body").to_vec())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The events of a calendar as the third-party parser reads them (the script fails on any broken promise:
/// CRLF, folding, the Europe/Paris VTIMEZONE against the real zone, tz-aware DTSTART/DTEND...).
fn parsed_calendar(ics: &[u8], name: &str) -> Vec<Value> {
    let path = std::env::temp_dir().join(format!("id77-sessions-{}-{name}.ics", std::process::id()));
    std::fs::write(&path, ics).expect("calendar written");
    let script = workspace_root().join("tests/calendar/check_ics.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .expect("python3 with icalendar (pip install -r tests/calendar/requirements.txt)");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "{name}: icalendar refused it: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(ics)
    );
    serde_json::from_slice::<Vec<Value>>(&output.stdout).expect("the checker's JSON")
}

/// The text of a PDF's pages as pypdf extracts it (strict parsing).
fn pdf_text(pdf: &[u8], name: &str) -> String {
    let path = std::env::temp_dir().join(format!("id77-sessions-{}-{name}.pdf", std::process::id()));
    std::fs::write(&path, pdf).expect("pdf written");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys; from pypdf import PdfReader; \
             sys.stdout.write('\\n'.join(p.extract_text() for p in PdfReader(sys.argv[1], strict=True).pages))",
        )
        .arg(&path)
        .output()
        .expect("python3 with pypdf (make test installs it)");
    let _ = std::fs::remove_file(Path::new(&path));
    assert!(output.status.success(), "{name}: pypdf: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).replace('\u{a0}', " ")
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn ids(registrations: &Value) -> Vec<String> {
    registrations
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_fills_promotes_from_its_waiting_list_is_attended_attested_and_in_calendars() {
    let platform = Platform::start().await.expect("platform");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (member_a, admin_a) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux");
    let (member_b, admin_b) = onboard_member(&api, &coordinator, "217702885", "dgs@melun.fr").await.expect("Melun");

    // A training offer and its provider's agent.
    let (_, offers) = api.get("/v1/offers?category=awareness_training&limit=100", None).await;
    let offer = offers["items"][0].clone();
    let offer_id = offer["id"].as_str().expect("a training offer").to_owned();
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let agent = api.access_token(&format!("agent.{provider}@id77.demo"), DEMO_PASSWORD).await.expect("agent");

    // Scheduled with two seats, in person at Melun, starting shortly.
    let starts = (Utc::now() + LEAD).trunc_subsecs(0);
    let ends = starts + chrono::Duration::hours(3);
    let schedule = json!({
        "starts_at": starts.to_rfc3339(), "ends_at": ends.to_rfc3339(),
        "place": {"online": false, "commune_insee": "77288", "address": "Hôtel du Département, 12 rue des Saints-Pères"},
        "capacity": 2, "details": "Les bases de l'urbanisme pour les élus."
    });
    let response = api
        .http
        .post(format!("{}/v1/offers/{offer_id}/sessions", api.base))
        .bearer_auth(&agent)
        .json(&schedule)
        .send()
        .await
        .expect("schedule");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = header(response.headers(), "location").to_owned();
    let session: Value = response.json().await.expect("session");
    let s = session["id"].as_str().expect("session id").to_owned();
    assert_eq!(location, format!("/v1/sessions/{s}"));
    assert_eq!(session["status"], "scheduled", "{session}");
    assert_eq!((session["capacity"].clone(), session["seats_left"].clone()), (json!(2), json!(2)), "{session}");
    assert_eq!(session["starts_at"], utc(starts), "{session}");
    assert_eq!(session["place"]["commune_insee"], "77288", "{session}");
    // Only the agent's provider manages its offers' sessions; a member may not schedule.
    assert_eq!(
        api.post(&format!("/v1/offers/{offer_id}/sessions"), Some(&admin_a), &schedule).await.0,
        StatusCode::FORBIDDEN
    );
    // The offer's page lists it, anonymously, with its seats left.
    let (status, listed) = api.get(&format!("/v1/offers/{offer_id}/sessions"), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(
        listed["items"].as_array().is_some_and(|i| i.iter().any(|x| x["id"] == s.as_str() && x["seats_left"] == 2)),
        "{listed}"
    );

    // A token sent to a public read is checked, not ignored; filters are checked before any call.
    assert_eq!(api.get("/v1/sessions", Some("not-a-token")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/sessions?status=scheduled,ended", None).await.0, StatusCode::BAD_REQUEST);
    let (status, held_ones) = api.get(&format!("/v1/offers/{offer_id}/sessions?status=held"), Some(&agent)).await;
    assert_eq!(status, StatusCode::OK, "{held_ones}");
    assert!(held_ones["items"].as_array().is_some_and(|i| i.iter().all(|x| x["status"] == "held")), "{held_ones}");

    // A registers two participants, B one: two seats, so B's is waitlisted.
    let path = format!("/v1/sessions/{s}/registrations");
    let two = json!({"participants": [
        {"name": "Claire Martin", "function": "maire adjointe", "email": "c.martin@meaux.fr"},
        {"name": "Hugo Petit", "function": "secrétaire de mairie", "email": "h.petit@meaux.fr"},
    ]});
    let (status, of_a) = api.post(&path, Some(&admin_a), &two).await;
    assert_eq!(status, StatusCode::CREATED, "{of_a}");
    let of_a = of_a["registrations"].clone();
    assert_eq!(
        of_a.as_array().map(|r| r.iter().map(|r| r["status"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("confirmed"), json!("confirmed")]),
        "{of_a}"
    );
    let promoted_email = "j.bernard@melun.fr";
    let one = json!({"participants": [{"name": "Julie Bernard", "function": "DGS", "email": promoted_email}]});
    let (status, of_b) = api.post(&path, Some(&admin_b), &one).await;
    assert_eq!(status, StatusCode::CREATED, "{of_b}");
    let b1 = of_b["registrations"][0].clone();
    assert_eq!((b1["status"].clone(), b1["waitlist_position"].clone()), (json!("waitlisted"), json!(1)), "{b1}");
    let b1 = b1["id"].as_str().expect("B's registration").to_owned();
    let (a1, a2) = match ids(&of_a).as_slice() {
        [a1, a2] => (a1.clone(), a2.clone()),
        other => panic!("two registrations of A: {other:?}"),
    };
    let (_, full) = api.get(&format!("/v1/sessions/{s}"), None).await;
    assert_eq!(
        (full["confirmed"].clone(), full["waitlisted"].clone(), full["seats_left"].clone()),
        (json!(2), json!(1), json!(0)),
        "{full}"
    );

    // A member sees its own registrations only; the provider sees all.
    let (status, seen_by_b) = api.get(&path, Some(&admin_b)).await;
    assert_eq!(status, StatusCode::OK, "{seen_by_b}");
    assert_eq!(ids(&seen_by_b["items"]), vec![b1.clone()], "{seen_by_b}");
    assert!(seen_by_b["items"].as_array().is_some_and(|i| i.iter().all(|r| r["member_id"] == member_b.as_str())));
    let (_, seen_by_agent) = api.get(&path, Some(&agent)).await;
    assert_eq!(ids(&seen_by_agent["items"]).len(), 3, "{seen_by_agent}");
    let (status, mine) = api.get("/v1/registrations", Some(&admin_a)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let mine = mine["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(mine.len(), 2, "« Mes inscriptions »: {mine:?}");
    assert!(mine.iter().all(|r| r["member_id"] == member_a.as_str() && r["session"]["id"] == s.as_str()), "{mine:?}");
    // B can neither cancel A's registration nor see it.
    let (status, _) = api.post(&format!("/v1/registrations/{a1}/cancel"), Some(&admin_b), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A cancels one of its own: B's participant is promoted, and told by mail.
    let (status, cancelled) =
        api.post(&format!("/v1/registrations/{a1}/cancel"), Some(&admin_a), &json!({"reason": "Indisponible"})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let promoted = eventually("B's participant promoted", WAIT, || async {
        let (_, page) = api.get(&path, Some(&admin_b)).await;
        let registration = page["items"][0].clone();
        (registration["status"] == "confirmed").then_some(registration)
    })
    .await;
    assert_eq!(promoted["waitlist_position"], Value::Null, "{promoted}");
    let mail = eventually("the promotion mail in the SMTP sink", WAIT, || async {
        platform.mail.mails_to(promoted_email).into_iter().find(|m| {
            let text = format!("{} {}", m.subject(), m.body()).to_lowercase();
            text.contains("libérée")
        })
    })
    .await;
    assert!(
        mail.body().contains("Julie Bernard")
            || mail.body().contains(&offer["title"].as_str().unwrap_or("?").to_owned()),
        "{}",
        mail.body()
    );

    // The session's calendar: RFC 5545 as a third-party parser reads it, times in Europe/Paris.
    let (status, headers, ics) = download(&api, &format!("/v1/sessions/{s}/calendar"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/calendar; charset=utf-8");
    assert!(header(&headers, "content-disposition").starts_with("inline; filename=\"session-"), "{headers:?}");
    assert!(header(&headers, "content-disposition").contains(".ics\""), "{headers:?}");
    let events = parsed_calendar(&ics, "session");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["start"].clone(), events[0]["end"].clone()),
        (json!(utc(starts)), json!(utc(ends))),
        "{events:?}"
    );
    assert_eq!(events[0]["status"], "CONFIRMED", "{events:?}");
    assert!(events[0]["location"].as_str().is_some_and(|l| l.contains("Saints-Pères")), "{events:?}");
    // Unchanged: a subscribed application revalidates for nothing.
    let etag = header(&headers, "etag").to_owned();
    assert!(!etag.is_empty(), "{headers:?}");
    let again = api
        .http
        .get(format!("{}/v1/sessions/{s}/calendar", api.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // B's personal feed: an absolute URL with a secret token, no other credential, never kept by shared caches.
    let (status, feed) = api.call(Method::POST, "/v1/me/calendar-feed", Some(&admin_b), None).await;
    assert_eq!(status, StatusCode::CREATED, "{feed}");
    let url = feed["url"].as_str().expect("feed url").to_owned();
    let token = feed["token"].as_str().expect("token").to_owned();
    assert_eq!(url, format!("{}/v1/calendar-feeds/{token}", platform.gateway), "{feed}");
    let (status, headers, ics) = download(&api, &url, None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&ics));
    assert_eq!(header(&headers, "cache-control"), "private, no-store");
    assert_eq!(header(&headers, "content-type"), "text/calendar; charset=utf-8");
    let events = parsed_calendar(&ics, "feed");
    assert!(events.iter().any(|e| e["start"] == utc(starts).as_str() && e["end"] == utc(ends).as_str()), "{events:?}");
    // A new token replaces the old; revoking makes the URL unknown.
    let (_, renewed) = api.call(Method::POST, "/v1/me/calendar-feed", Some(&admin_b), None).await;
    let renewed = renewed["url"].as_str().expect("renewed url").to_owned();
    assert_eq!(download(&api, &url, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(download(&api, &renewed, None).await.0, StatusCode::OK);
    let (status, _) = api.call(Method::DELETE, "/v1/me/calendar-feed", Some(&admin_b), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(download(&api, &renewed, None).await.0, StatusCode::NOT_FOUND);

    // Once started: the sheet to sign, then who came (A's remaining participant did not, B's did).
    let wait = (starts - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    let (status, headers, sheet) = download(&api, &format!("/v1/sessions/{s}/attendance-sheet"), Some(&agent)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&sheet));
    assert_eq!(header(&headers, "content-type"), "application/pdf");
    assert!(sheet.starts_with(b"%PDF"));
    assert!(pdf_text(&sheet, "sheet").contains("Julie Bernard"));
    let (status, held) = api
        .post(&format!("/v1/sessions/{s}/attendance"), Some(&agent), &json!({"attended_registration_ids": [b1]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{held}");
    assert_eq!((held["status"].clone(), held["attended"].clone()), (json!("held"), json!(1)), "{held}");

    // The attestation de présence of B's participant, for B only (A's admin gets 404; A's absent one, 409).
    let (status, headers, pdf) = download(&api, &format!("/v1/registrations/{b1}/attestation"), Some(&admin_b)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(header(&headers, "content-type"), "application/pdf");
    assert!(header(&headers, "content-disposition").starts_with("attachment; filename=\""), "{headers:?}");
    assert!(pdf.starts_with(b"%PDF"));
    let text = pdf_text(&pdf, "attestation");
    assert!(text.contains("Julie Bernard"), "{text}");
    assert!(text.to_lowercase().contains("attestation"), "{text}");
    assert_eq!(
        download(&api, &format!("/v1/registrations/{b1}/attestation"), Some(&admin_a)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&api, &format!("/v1/registrations/{a2}/attestation"), Some(&admin_a)).await.0,
        StatusCode::CONFLICT
    );

    // B rates the session it attended.
    let (status, rating) = api
        .post(&format!("/v1/sessions/{s}/rating"), Some(&admin_b), &json!({"score": 5, "comment": "Très clair"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rating}");
    assert_eq!((rating["score"].clone(), rating["member_id"].clone()), (json!(5), json!(member_b)), "{rating}");
    platform.stop().await;
}
