//! The reconciler (`id77-admin reconcile`, ADR 0013) names every kind of disagreement between the services. The
//! platform runs real requests through the gateway to every state; then the test plants one inconsistency of each
//! kind directly in a service's database (as a bad restore or a bug would) and checks that the reconciler, reading
//! the services through their gRPC APIs only, reports each one on the right request and exits 1.

use std::collections::BTreeSet;
use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Platform, accept_quote, eventually, onboard_member};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(30);
const BILLED_OFFER: &str = "diagnostic-accessibilite-erp";
const PROVIDER: &str = "dir-batiments";

struct Actors {
    api: Api,
    coordinator: String,
    admin: String,
    agent: String,
    offer_id: String,
}

impl Actors {
    async fn submit(&self, subject: &str) -> String {
        let body = json!({"offer_id": self.offer_id, "subject": subject, "description": "Diagnostic"});
        let request = eventually("the submission", WAIT, || async {
            match self.api.post("/v1/requests", Some(&self.admin), &body).await {
                (StatusCode::CREATED, value) => Some(value),
                (StatusCode::CONFLICT | StatusCode::NOT_FOUND, _) => None,
                (other, value) => panic!("unexpected {other}: {value}"),
            }
        })
        .await;
        request["id"].as_str().expect("request id").to_owned()
    }

    async fn referral(&self, request_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/v1/referrals?request_id={request_id}");
        eventually("the referral", WAIT, || async {
            let (_, list) = self.api.get(&path, Some(&self.coordinator)).await;
            list["items"].as_array().and_then(|i| i.first()).filter(|r| pred(r)).cloned()
        })
        .await
    }

    async fn status(&self, request_id: &str, status: &str) {
        let path = format!("/v1/requests/{request_id}");
        eventually(&format!("request {request_id} {status}"), WAIT, || async {
            let (_, r) = self.api.get(&path, Some(&self.admin)).await;
            (r["status"] == status).then_some(())
        })
        .await;
    }

    async fn quote_status(&self, request_id: &str, status: &str) {
        let path = format!("/v1/quotes?request_id={request_id}");
        eventually(&format!("quote of {request_id} {status}"), WAIT, || async {
            let (_, list) = self.api.get(&path, Some(&self.admin)).await;
            list["items"].as_array().and_then(|i| i.first()).filter(|q| q["status"] == status).map(|_| ())
        })
        .await;
    }

    /// A request the agent accepted (quote proposed); returns (request id, referral id).
    async fn accepted(&self, subject: &str) -> (String, String) {
        let request_id = self.submit(subject).await;
        let referral = self.referral(&request_id, |r| r["status"] == "offered").await;
        let referral_id = referral["id"].as_str().expect("id").to_owned();
        let (status, body) =
            self.api.post(&format!("/v1/referrals/{referral_id}/accept"), Some(&self.agent), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.status(&request_id, "accepted").await;
        self.quote_status(&request_id, "proposed").await;
        (request_id, referral_id)
    }

    /// A request cancelled after acceptance (referral withdrawn, quote voided).
    async fn cancelled(&self, subject: &str) -> String {
        let (request_id, _) = self.accepted(subject).await;
        let path = format!("/v1/requests/{request_id}/cancel");
        let (status, body) = self.api.post(&path, Some(&self.admin), &json!({"reason": "reporté"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.referral(&request_id, |r| r["status"] == "withdrawn").await;
        self.quote_status(&request_id, "voided").await;
        request_id
    }

    /// A request completed and invoiced.
    async fn completed(&self, subject: &str) -> String {
        let (request_id, referral_id) = self.accepted(subject).await;
        accept_quote(&self.api, &self.admin, &self.coordinator, &request_id).await.expect("quote accepted");
        let (status, body) =
            self.api.post(&format!("/v1/referrals/{referral_id}/complete"), Some(&self.agent), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.status(&request_id, "completed").await;
        let path = format!("/v1/invoices?request_id={request_id}");
        eventually("the invoice", WAIT, || async {
            let (_, list) = self.api.get(&path, Some(&self.admin)).await;
            list["items"].as_array().filter(|i| !i.is_empty()).map(|_| ())
        })
        .await;
        request_id
    }
}

async fn plant(platform: &Platform, service: &str, statements: &[String]) {
    let url = platform.database_url(service).expect("service database");
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    for sql in statements {
        // Test-only statements built from ids this test made: no outside input.
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(done.rows_affected() > 0 || !sql.starts_with("UPDATE") && !sql.starts_with("INSERT"), "{sql}: no row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_names_every_kind_of_disagreement_planted_in_the_databases() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (_, admin) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("admin");
    let agent = api.access_token(&format!("agent.{PROVIDER}@id77.demo"), DEMO_PASSWORD).await.expect("agent");
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer_id = offers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["code"] == BILLED_OFFER))
        .and_then(|o| o["id"].as_str())
        .expect("the billed offer")
        .to_owned();
    let a = Actors { api, coordinator, admin, agent, offer_id };

    // Real requests in every state, all consistent: the reconciler finds nothing.
    let referral_mismatch = a.cancelled("withdrawn, then said accepted").await;
    let quote_mismatch = a.cancelled("voided, then said accepted").await;
    let invoice_mismatch = a.completed("invoiced from a quote said proposed").await;
    let (agreement_mismatch, _) = a.accepted("proposed quote, referral said agreed").await;
    let (duplicate_referral, _) = a.accepted("two open referrals").await;
    let (duplicate_quote, _) = a.accepted("two live quotes").await;
    let orphans = a.cancelled("its referral and quote moved to a request nobody has").await;
    let orphan_invoice = a.completed("its invoice moved away").await;
    let clean = platform.reconcile_with(1, &[]).await.expect("reconciler runs");
    assert!(clean.is_consistent(), "before planting: {}", clean.output);

    // Plant one inconsistency of each kind.
    let (nobody, nobody_else) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    plant(
        &platform,
        "routing",
        &[
            format!("UPDATE referral SET status = 'accepted' WHERE request_id = '{referral_mismatch}'"),
            format!("UPDATE referral SET agreement = 'agreed' WHERE request_id = '{agreement_mismatch}'"),
            format!("UPDATE referral SET request_id = '{nobody}' WHERE request_id = '{orphans}'"),
            // The database forbids two open referrals for a request; a corrupted copy would not.
            "DROP INDEX referral_one_open".to_owned(),
            "DROP INDEX referral_by_attempt".to_owned(),
            "CREATE TEMP TABLE dup AS SELECT * FROM referral WHERE false".to_owned(),
            format!("INSERT INTO dup SELECT * FROM referral WHERE request_id = '{duplicate_referral}'"),
            "UPDATE dup SET id = gen_random_uuid(), status = 'offered', offered_at = offered_at + interval '1 second'"
                .to_owned(),
            "INSERT INTO referral SELECT * FROM dup".to_owned(),
        ],
    )
    .await;
    plant(
        &platform,
        "billing",
        &[
            format!(
                "UPDATE quote SET status = 'accepted', signatory_name = 'planté' WHERE request_id = '{quote_mismatch}'"
            ),
            format!("UPDATE quote SET status = 'proposed', decided_at = NULL WHERE request_id = '{invoice_mismatch}'"),
            format!("UPDATE quote SET request_id = '{nobody}' WHERE request_id = '{orphans}'"),
            format!("UPDATE invoice SET request_id = '{nobody_else}' WHERE request_id = '{orphan_invoice}'"),
            // Quotes are unique per referral and numbered without gaps; a corrupted copy is neither.
            "CREATE TEMP TABLE dup AS SELECT * FROM quote WHERE false".to_owned(),
            format!("INSERT INTO dup SELECT * FROM quote WHERE request_id = '{duplicate_quote}'"),
            "UPDATE dup SET id = gen_random_uuid(), number = number || '-bis', sequence = sequence + 1000000"
                .to_owned(),
            "ALTER TABLE quote DROP CONSTRAINT quote_referral_id_key".to_owned(),
            "INSERT INTO quote SELECT * FROM dup".to_owned(),
        ],
    )
    .await;

    let report = platform.reconcile_with(1, &["--json"]).await.expect("reconciler runs");
    assert_eq!(report.code, 1, "{}", report.output);
    let json_start = report.output.find('{').expect("a JSON report");
    let parsed: Value = serde_json::from_str(report.output[json_start..].trim()).unwrap_or_else(|e| {
        panic!("JSON report: {e}\n{}", report.output);
    });
    let found: BTreeSet<(String, String)> = parsed["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["request_id"].as_str().unwrap_or("").to_owned(), f["kind"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected = [
        (referral_mismatch.as_str(), "request_referral_mismatch"),
        (quote_mismatch.as_str(), "quote_mismatch"),
        (invoice_mismatch.as_str(), "invoice_mismatch"),
        (agreement_mismatch.as_str(), "agreement_mismatch"),
        (duplicate_referral.as_str(), "duplicate_open_referral"),
        (duplicate_quote.as_str(), "duplicate_document"),
    ];
    for (request, kind) in expected {
        assert!(found.contains(&(request.to_owned(), kind.to_owned())), "{kind} on {request} not reported: {found:?}");
    }
    let nobody = nobody.to_string();
    let nobody_else = nobody_else.to_string();
    for (request, kind) in [
        (nobody.as_str(), "orphan_referral"),
        (nobody.as_str(), "orphan_quote"),
        (nobody_else.as_str(), "orphan_invoice"),
    ] {
        assert!(
            found.iter().any(|(r, k)| k == kind && (r == request || r.is_empty())),
            "{kind} not reported: {found:?}"
        );
    }
    // The plain-text form names each finding on a line of its own and sums them up.
    let text = platform.reconcile_with(1, &[]).await.expect("reconciler runs");
    eprintln!("{}", text.output);
    assert_eq!(text.code, 1);
    assert!(
        text.output.contains(&format!("request {referral_mismatch}: request_referral_mismatch")),
        "{}",
        text.output
    );
    assert!(
        text.output.lines().any(|l| l.starts_with("reconcile: ") && !l.ends_with(" 0 findings")),
        "{}",
        text.output
    );

    // This platform is inconsistent on purpose: no reconciliation at its stop.
    platform.reconcile_at_stop = false;
    platform.stop().await;
}
