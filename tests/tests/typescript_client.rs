//! Issue 20, item 3: web and mobile teams consume the API with no hand-written glue. The gateway's own OpenAPI 3.1
//! document (`GET /openapi.json` of the running platform) goes through a mainstream generator from npm
//! (openapi-typescript, pinned with openapi-fetch and TypeScript in `tests/client/package-lock.json`), the
//! generated client and the journey written against it compile with `tsc --strict`, and Node drives the member
//! journey through it: a member admin signs in, searches offers, submits a request, reads its quote once the
//! provider's consumer accepted and agrees to it, with assertions on typed fields (`tests/client/src/journey.ts`).
//!
//! Steps: `npm ci` in tests/client (from the committed lock, alongside the platform's start) → the document,
//! checked for the operations the journey calls → `npm run generate` (into tests/client/generated/, git-ignored)
//! → `npm run build` (tsc --strict into tests/client/out/, git-ignored) → `npm run journey`. The first failing
//! step fails the test, named, with what the command printed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use id77_e2e::{Api, DEMO_PASSWORD, Platform, USER_PASSWORD, onboard_member, workspace_root};
use reqwest::StatusCode;
use serde_json::Value;

/// The operations `journey.ts` calls: method, path, operationId.
const JOURNEY_OPERATIONS: &[(&str, &str, &str)] = &[
    ("post", "/v1/auth/token", "issueToken"),
    ("get", "/v1/me", "getMe"),
    ("get", "/v1/offers", "searchOffers"),
    ("post", "/v1/requests", "submitRequest"),
    ("get", "/v1/requests/{id}", "getRequest"),
    ("get", "/v1/quotes", "listQuotes"),
    ("post", "/v1/quotes/{id}/accept", "acceptQuote"),
];

/// The member whose admin walks the journey (Meaux) and the provider whose consumer accepts every referral.
const SIREN: &str = "217702844";
const ADMIN_EMAIL: &str = "dgs@meaux.fr";
const PROVIDER: &str = "dir-routes";

fn client_dir() -> PathBuf {
    workspace_root().join("tests/client")
}

/// Runs one step's command in tests/client; `Err` names the step and carries what the command printed.
async fn run(
    step: &str,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    limit: Duration,
) -> Result<String, String> {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(client_dir())
        .envs(envs.iter().copied())
        .env("NPM_CONFIG_UPDATE_NOTIFIER", "false")
        .env("NPM_CONFIG_FUND", "false")
        .env("NPM_CONFIG_AUDIT", "false")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(limit, command.output()).await {
        Err(_) => return Err(format!("step `{step}` did not finish within {limit:?}")),
        Ok(Err(error)) => {
            return Err(format!("step `{step}`: cannot run {program} (node and npm are needed): {error}"));
        }
        Ok(Ok(output)) => output,
    };
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
        .trim()
        .to_owned();
    eprintln!("== {step}: {} in {:.1} s", output.status, started.elapsed().as_secs_f64());
    if output.status.success() {
        Ok(printed)
    } else {
        Err(format!("step `{step}` failed ({}):\n{printed}", output.status))
    }
}

/// The operations of `JOURNEY_OPERATIONS` the document lacks (or names with another operationId).
fn missing_operations(document: &Value) -> Vec<String> {
    JOURNEY_OPERATIONS
        .iter()
        .filter(|(method, path, id)| document["paths"][*path][*method]["operationId"].as_str() != Some(*id))
        .map(|(method, path, id)| format!("{id} ({} {path})", method.to_uppercase()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_typescript_client_walks_the_member_journey() {
    let started = Instant::now();
    // npm ci (from the committed lock: offline when npm's cache has the packages) while the platform starts.
    let install = run(
        "npm ci",
        "npm",
        &["ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        &[],
        Duration::from_secs(300),
    );
    let (installed, platform) = tokio::join!(install, Platform::start());
    let mut platform = platform.expect("platform starts");
    installed.unwrap_or_else(|e| panic!("{e}"));

    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    onboard_member(&api, &coordinator, SIREN, ADMIN_EMAIL).await.expect("Meaux joins, its admin is invited");
    platform.start_referral_consumer(PROVIDER, &["--rule", "accept-all"]).expect("the provider's consumer");

    // The running gateway's document, into a temporary file.
    let (status, document) = api.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "GET /openapi.json: {document}");
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "an OpenAPI 3.1 document, not {version:?}");
    let missing = missing_operations(&document);
    assert!(
        missing.is_empty(),
        "step `document`: GET /openapi.json lacks operations the journey calls: {}",
        missing.join(", ")
    );
    let spec = std::env::temp_dir().join(format!("id77-openapi-{}.json", platform.prefix));
    std::fs::write(&spec, serde_json::to_vec_pretty(&document).expect("JSON")).expect("document written");

    // Generate afresh (nothing left over from an earlier run), compile strictly, then walk the journey.
    for stale in ["generated", "out"] {
        let _ = std::fs::remove_dir_all(client_dir().join(stale));
    }
    let spec_arg = spec.to_string_lossy().into_owned();
    let generated =
        run("generate", "npm", &["run", "--silent", "generate", "--", &spec_arg], &[], Duration::from_secs(120)).await;
    let _ = std::fs::remove_file(&spec);
    generated.unwrap_or_else(|e| panic!("{e}"));
    assert!(client_dir().join("generated/api.ts").is_file(), "the generator wrote generated/api.ts");
    run("tsc --strict", "npm", &["run", "--silent", "build"], &[], Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let journey = run(
        "journey",
        "npm",
        &["run", "--silent", "journey"],
        &[
            ("ID77_GATEWAY_URL", platform.gateway.as_str()),
            ("ID77_MEMBER_EMAIL", ADMIN_EMAIL),
            ("ID77_MEMBER_PASSWORD", USER_PASSWORD),
            ("ID77_PROVIDER", PROVIDER),
        ],
        Duration::from_secs(120),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{journey}");
    assert!(journey.contains("journey: 7 steps passed"), "every step of the journey ran:\n{journey}");
    eprintln!("TypeScript client journey done in {:.1} s", started.elapsed().as_secs_f64());

    platform.stop().await;
}
