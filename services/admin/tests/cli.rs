//! The binary as an operator (or a Kubernetes Job) runs it: configured by the environment alone.

use std::process::{Command, Output};

fn admin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_id77-admin"));
    for var in [
        "ID77_MEMBERSHIP_URL",
        "ID77_REQUESTS_URL",
        "ID77_ROUTING_URL",
        "ID77_BILLING_URL",
        "ID77_ADMIN_EMAIL",
        "ID77_ADMIN_PASSWORD",
        "ID77_ADMIN_TOKEN",
        "ID77_ADMIN_SETTLE_SECS",
        "ID77_ADMIN_TIMEOUT_SECS",
    ] {
        command.env_remove(var);
    }
    command.args(args).envs(env.iter().copied());
    command.output().unwrap_or_else(|e| panic!("running id77-admin: {e}"))
}

#[test]
fn an_unreachable_service_exits_2_and_is_named() {
    // Nothing listens on port 1: the sign-in to membership is refused.
    let output = admin(
        &["reconcile"],
        &[
            ("ID77_MEMBERSHIP_URL", "http://127.0.0.1:1"),
            ("ID77_ADMIN_EMAIL", "coordination@id77.demo"),
            ("ID77_ADMIN_PASSWORD", "Id77-Demo-Seine77!"),
            ("ID77_ADMIN_TIMEOUT_SECS", "5"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "id77-admin reconcile: cannot read the services: membership (http://127.0.0.1:1): IssueToken for \
             coordination@id77.demo: Unavailable"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Seine77"), "the password is never printed: {stderr}");

    // With a token, the first read is requests'.
    let output = admin(
        &["reconcile", "--json"],
        &[("ID77_REQUESTS_URL", "http://127.0.0.1:1"), ("ID77_ADMIN_TOKEN", "not-checked-before-the-call")],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("requests (http://127.0.0.1:1): ListRequests (page 1): Unavailable"), "{stderr}");
}

#[test]
fn missing_credentials_exit_2() {
    let output = admin(&["reconcile"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no credentials: give --token (ID77_ADMIN_TOKEN)"), "{stderr}");
}
