//! Load through the gateway, shared by the fault-injection suite (tests/tests/chaos.rs) and the benchmark
//! (bench/): real communes of the directory join as members, each with its admin user, and submit requests for a
//! billed offer the way a client must, retrying a refused submission with the same `Idempotency-Key`.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Api, DEMO_PASSWORD};

/// A member (a commune) and its admin user.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub siren: String,
    pub name: String,
    pub email: String,
    pub token: String,
}

/// The coordinator's access token (a demo account membership creates). A login refused because membership is
/// busy (password hashing on a loaded machine) is tried again, for up to a minute.
pub async fn coordinator_token(api: &Api) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match api.access_token("coordination@id77.demo", DEMO_PASSWORD).await {
            Ok(token) => return Ok(token),
            Err(error) if started.elapsed() < Duration::from_secs(60) && error.to_string().contains(" 503 ") => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// `count` real communes of the directory join: they apply, the coordinator approves them and invites their
/// admin, who accepts. Returns the members once the requests service knows them (a first submission is
/// accepted), so that load can start.
pub async fn join_communes(api: &Api, count: usize) -> anyhow::Result<Vec<Member>> {
    let coordinator = coordinator_token(api).await?;
    let (status, found) = api.get(&format!("/v1/collectivities?kind=commune&limit={}", count.max(1)), None).await;
    anyhow::ensure!(status == StatusCode::OK, "directory search: {status} {found}");
    let communes = found["items"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(communes.len() >= count, "the directory has only {} communes", communes.len());
    let mut members = Vec::new();
    for (i, commune) in communes.iter().take(count).enumerate() {
        let siren = commune["siren"].as_str().context("siren")?.to_owned();
        let name = commune["name"].as_str().unwrap_or_default().to_owned();
        let email = format!("admin{i}.{siren}@commune.test");
        let apply = json!({"siren": siren, "contact_name": "Secrétariat", "contact_email": email});
        let (status, member) = api.post("/v1/memberships", None, &apply).await;
        anyhow::ensure!(status == StatusCode::CREATED, "{name} applies: {status} {member}");
        let id = member["id"].as_str().context("member id")?.to_owned();
        let (status, approved) =
            api.post(&format!("/v1/memberships/{id}/approve"), Some(&coordinator), &json!({})).await;
        anyhow::ensure!(status == StatusCode::OK, "approving {name}: {status} {approved}");
        let (token, _) = api
            .invite_and_accept(
                &coordinator,
                &json!({"email": email, "display_name": format!("Admin {name}"), "role": "member_admin", "member_id": id}),
            )
            .await?;
        members.push(Member { id, siren, name, email, token });
    }
    Ok(members)
}

/// The first billed offer (a quote and an invoice follow its acceptance and completion) of a category:
/// its id and its provider's code.
pub async fn billed_offer(api: &Api, category: &str) -> anyhow::Result<(String, String)> {
    let (status, offers) = api.get(&format!("/v1/offers?category={category}&limit=100"), None).await;
    anyhow::ensure!(status == StatusCode::OK, "offers: {status} {offers}");
    let offer = offers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["billed"] == true && o["price_cents"].as_i64().unwrap_or(0) > 0))
        .with_context(|| format!("no billed {category} offer"))?;
    Ok((
        offer["id"].as_str().context("offer id")?.to_owned(),
        offer["provider_code"].as_str().context("provider")?.to_owned(),
    ))
}

/// What became of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub key: String,
    pub member_id: String,
    /// The request id the gateway answered with (`None`: refused for good, see `refused`).
    pub request_id: Option<String>,
    /// Attempts the gateway (or the network) refused before the one that counted: 5xx, 429, connection errors.
    pub rejected_attempts: u32,
    /// A final 4xx other than 401/408/429: the status and the problem.
    pub refused: Option<String>,
}

/// The body of a request submitted by the load.
pub fn request_body(offer_id: &str, n: u64) -> Value {
    json!({"offer_id": offer_id, "subject": format!("Demande {n} : diagnostic de voirie"),
           "description": "Diagnostic et programme de travaux pour la voirie communale, généré par la charge."})
}

/// Submits one request with `key` as `Idempotency-Key`, retrying refused attempts with the same key (the client
/// contract) until the gateway answers 201/200 or `give_up` passes. A 401 logs the member's admin in again.
pub async fn submit(api: &Api, member: &mut Member, key: &str, body: &Value, give_up: Duration) -> Submitted {
    let started = std::time::Instant::now();
    let mut outcome = Submitted {
        key: key.to_owned(),
        member_id: member.id.clone(),
        request_id: None,
        rejected_attempts: 0,
        refused: None,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let sent = api
            .http
            .post(format!("{}/v1/requests", api.base))
            .bearer_auth(&member.token)
            .header("Idempotency-Key", key)
            .timeout(Duration::from_secs(30))
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let value = response.json::<Value>().await.unwrap_or_default();
                match value["id"].as_str() {
                    Some(id) => {
                        outcome.request_id = Some(id.to_owned());
                        return outcome;
                    }
                    None => outcome.rejected_attempts += 1,
                }
            }
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                outcome.rejected_attempts += 1;
                if let Ok(token) = api.access_token(&member.email, crate::USER_PASSWORD).await {
                    member.token = token;
                }
            }
            Ok(response)
                if response.status().is_client_error()
                    && !matches!(response.status(), StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS) =>
            {
                let status = response.status();
                let problem = response.text().await.unwrap_or_default();
                outcome.refused = Some(format!("{status} {problem}"));
                return outcome;
            }
            Ok(_) | Err(_) => outcome.rejected_attempts += 1,
        }
        if started.elapsed() > give_up {
            outcome.refused = Some(format!("still refused after {give_up:?}"));
            return outcome;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Polls a JSON endpoint until `ready` holds for its body.
pub async fn wait_for(
    api: &Api,
    path: &str,
    token: &str,
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    loop {
        let (status, value) = api.get(path, Some(token)).await;
        if status == StatusCode::OK && ready(&value) {
            return Ok(value);
        }
        if started.elapsed() > limit {
            bail!("{path} not ready after {limit:?}: {status} {value}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
