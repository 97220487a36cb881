//! Issue 20, item 2: an independent conformance run of the API. schemathesis (PyPI, the exact version pinned in
//! `tests/conformance/requirements.txt`, which `make test` installs) reads the gateway's OpenAPI document from the
//! running platform (`GET /openapi.json`), generates requests for every operation from it — the document's
//! examples, then its coverage and fuzzing phases, at most `MAX_EXAMPLES` cases per operation and phase, with a
//! fixed seed; no stateful phase — and runs every check it has (`--checks all`: no server error, documented status
//! codes, content types, headers and response schemas, schema-valid requests accepted and schema-violating ones
//! rejected, authentication not ignored...) on each answer; `tests/conformance/schemathesis.toml` only adds 413,
//! 414 and 431 to the refusals a schema-violating request may get, and `tests/conformance/conformance_hooks.py`
//! makes the requests generated as valid keep the few rules JSON Schema cannot state (an opaque cursor is one the
//! API gave; `to` not before `from`; a loan starts today or later; a quote label goes with an amount...), each
//! stated in the document's descriptions. Three runs, one per caller: anonymous, a
//! member's admin, a provider's agent. The test fails when any run reports a failure or an error.
//!
//! Left out of every run (tests/conformance/run.py, `EXCLUDED`): `POST /v1/auth/logout` and
//! `POST /v1/auth/keys/rotate` (they would end the run's own session or retire the key under its tokens),
//! `DELETE /v1/users/{id}` (removes users, possibly the caller) and `GET /v1/events` (a stream that never ends).
//! The gateway's rate limits are off here (`ID77_RATE_LIMIT_PER_MINUTE=0`, `ID77_AUTH_RATE_LIMIT_PER_MINUTE=0`):
//! a run makes thousands of calls from one address; the limits have their own tests.
//!
//! Each run prints its counts (operations, cases, calls, cases passed and failed per check) and, for each
//! operation and failing check, the smallest failing call; schemathesis's whole output and its JSON report stay
//! in `<target>/e2e-logs/<prefix>/conformance/<caller>/` (with the NDJSON of every call when the run failed).

use std::process::Stdio;
use std::time::{Duration, Instant};

use id77_e2e::{Api, DEMO_PASSWORD, Options, Platform, USER_PASSWORD, onboard_member, provider_codes, workspace_root};

/// Cases per operation and phase: the three runs take about a minute in all on two cores.
const MAX_EXAMPLES: u32 = 10;
/// The seed of every run: the same requests on every machine (for one document and one schemathesis version).
const SEED: u32 = 77;
/// The member whose admin is one of the callers (Meaux).
const SIREN: &str = "217702844";
const ADMIN_EMAIL: &str = "dgs@meaux.fr";
/// The longest a run may take.
const RUN_LIMIT: Duration = Duration::from_secs(420);

/// One run of tests/conformance/run.py as `label`, with `token` as bearer when given; `Ok` when it found nothing.
async fn conformance_run(platform: &Platform, label: &str, token: Option<&str>) -> Result<String, String> {
    let out = platform.logs.join("conformance");
    let script = workspace_root().join("tests/conformance/run.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .args(["--base-url", &platform.gateway, "--label", label])
        .arg("--out")
        .arg(&out)
        .args(["--max-examples", &MAX_EXAMPLES.to_string(), "--seed", &SEED.to_string()])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(token) = token {
        // Through the environment, not the command line of the runner.
        command.args(["--token-env", "ID77_CONFORMANCE_TOKEN"]).env("ID77_CONFORMANCE_TOKEN", token);
    }
    let started = Instant::now();
    let output = match tokio::time::timeout(RUN_LIMIT, command.output()).await {
        Err(_) => return Err(format!("the {label} run did not finish within {RUN_LIMIT:?}")),
        Ok(Err(error)) => return Err(format!("the {label} run could not start python3: {error}")),
        Ok(Ok(output)) => output,
    };
    let text = format!(
        "{}{}-- {label}: exit {:?} after {:.1} s",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status.code(),
        started.elapsed().as_secs_f64()
    );
    if output.status.success() { Ok(text) } else { Err(text) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_anonymous_member_admin_and_provider_agent() {
    let started = Instant::now();
    let options = Options {
        gateway_env: vec![
            ("ID77_RATE_LIMIT_PER_MINUTE".into(), "0".into()),
            ("ID77_AUTH_RATE_LIMIT_PER_MINUTE".into(), "0".into()),
        ],
        ..Options::default()
    };
    let platform = Platform::start_with(options).await.expect("platform starts");
    let api = Api::new(&platform.gateway);

    // The callers: a member's first admin (onboarded by the coordinator) and the agent of a provider.
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");
    onboard_member(&api, &coordinator, SIREN, ADMIN_EMAIL).await.expect("member onboarded");
    let provider = provider_codes().expect("catalogue seed").into_iter().next().expect("a provider");
    let agent_email = format!("agent.{provider}@id77.demo");

    let mut outcomes = Vec::new();
    for label in ["anonymous", "member-admin", "provider-agent"] {
        // A token of its own for each run, logged in just before it (access tokens last 10 minutes).
        let token = match label {
            "member-admin" => Some(api.access_token(ADMIN_EMAIL, USER_PASSWORD).await.expect("member admin login")),
            "provider-agent" => Some(api.access_token(&agent_email, DEMO_PASSWORD).await.expect("agent login")),
            _ => None,
        };
        let outcome = conformance_run(&platform, label, token.as_deref()).await;
        match &outcome {
            Ok(text) | Err(text) => println!("{text}\n"),
        }
        outcomes.push((label, outcome.is_ok()));
    }
    println!("conformance: three runs and the platform in {:.1} s", started.elapsed().as_secs_f64());

    // The platform stops (and reconciles) before the verdict, so a failing run leaves no database behind.
    platform.stop().await;
    let failed: Vec<&str> = outcomes.iter().filter(|(_, ok)| !ok).map(|(label, _)| *label).collect();
    assert!(
        failed.is_empty(),
        "schemathesis reported failures as {}: see each run's list above (and its report folder)",
        failed.join(", ")
    );
}
