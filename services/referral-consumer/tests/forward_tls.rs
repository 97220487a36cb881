//! Forward mode over HTTPS: a local endpoint with its own CA (made here with the `openssl` command), served with
//! rustls. The forwarder trusts it with `--ca-file` only, refuses a certificate for another name or from another
//! CA, and sends plain `http://` to loopback only unless told otherwise. No NATS: the forwarder is driven directly.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use id77_referral_consumer::forward::{ForwardOptions, Forwarder};
use id77_referral_consumer::{Decision, Handler};
use support::{
    BoxError, HMAC_KEY, Pki, Received, TestResult, delivered_once, forwarder, http_endpoint, https_endpoint, referral,
};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn https_with_the_endpoints_ca_file_delivers_signed_referrals() -> TestResult {
    let pki = Pki::new()?;
    let received = Arc::new(Received::default());
    let port = https_endpoint(&pki, "good", &received).await?;
    let options = ForwardOptions { ca_file: Some(pki.path("ca.pem")), ..Default::default() };
    for host in ["127.0.0.1", "localhost"] {
        let received_before = received.referrals().len();
        let forwarder = forwarder(&format!("https://{host}:{port}/hook"), &options)?;
        let offered = referral();
        // Through the handler the consumer runs (retries until 2xx): the endpoint's accept comes back.
        let decision = tokio::time::timeout(Duration::from_secs(20), forwarder.referral(&offered)).await?;
        assert_eq!(decision, Some(Decision::Accept), "{host}");
        assert_eq!(received.referrals().len(), received_before + 1, "{host}");
        if host == "127.0.0.1" {
            delivered_once(&received, &offered)?;
        }
    }
    // A bundle with another CA first is read whole.
    let bundle = pki.path("bundle.pem");
    std::fs::write(&bundle, [std::fs::read(pki.path("other-ca.pem"))?, std::fs::read(pki.path("ca.pem"))?].concat())?;
    let options = ForwardOptions { ca_file: Some(bundle), ..Default::default() };
    let forwarder = forwarder(&format!("https://127.0.0.1:{port}/hook"), &options)?;
    assert_eq!(forwarder.offer_once(&referral()).await.map_err(|e| e.to_string())?, Some(Decision::Accept));
    Ok(())
}

/// One attempt's error, which must name the TLS failure and the way out.
async fn refused(forwarder: &Forwarder) -> Result<String, BoxError> {
    match forwarder.offer_once(&referral()).await {
        Ok(decision) => Err(format!("delivered ({decision:?}) where it must be refused").into()),
        Err(error) => {
            let error = error.to_string();
            eprintln!("refused as expected: {error}");
            assert!(error.contains("TLS with https://"), "{error}");
            assert!(error.contains("--ca-file"), "{error}");
            Ok(error)
        }
    }
}

#[tokio::test]
async fn an_unknown_ca_is_refused_with_a_clear_error() -> TestResult {
    let pki = Pki::new()?;
    let received = Arc::new(Received::default());
    let port = https_endpoint(&pki, "good", &received).await?;
    let url = format!("https://127.0.0.1:{port}/hook");

    // The system's roots alone do not know the endpoint's CA.
    let error = refused(&forwarder(&url, &ForwardOptions::default())?).await?;
    assert!(error.contains("UnknownIssuer"), "{error}");

    // Nor does another CA.
    let options = ForwardOptions { ca_file: Some(pki.path("other-ca.pem")), ..Default::default() };
    let error = refused(&forwarder(&url, &options)?).await?;
    assert!(error.contains("UnknownIssuer"), "{error}");

    // The consumer's handler keeps retrying (the endpoint may fix its certificate) and never delivers.
    let shutdown = CancellationToken::new();
    let mut retrying = Forwarder::new(&url, HMAC_KEY.to_vec(), shutdown.clone()).map_err(|e| e.to_string())?;
    retrying.initial_backoff = Duration::from_millis(50);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        stop.cancel();
    });
    let offered = referral();
    let decision = tokio::time::timeout(Duration::from_secs(20), retrying.referral(&offered)).await?;
    assert_eq!(decision, None);
    assert!(received.referrals().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_certificate_for_another_name_or_from_another_ca_is_refused() -> TestResult {
    let pki = Pki::new()?;
    let received = Arc::new(Received::default());
    let options = ForwardOptions { ca_file: Some(pki.path("ca.pem")), ..Default::default() };

    // Signed by the trusted CA, but for other.example.
    let port = https_endpoint(&pki, "wrong-name", &received).await?;
    let error = refused(&forwarder(&format!("https://127.0.0.1:{port}/hook"), &options)?).await?;
    assert!(error.contains("not valid for name") || error.contains("NotValidForName"), "{error}");
    let error = refused(&forwarder(&format!("https://localhost:{port}/hook"), &options)?).await?;
    assert!(error.contains("not valid for name") || error.contains("NotValidForName"), "{error}");

    // For 127.0.0.1, but signed by a CA that is not trusted.
    let port = https_endpoint(&pki, "by-other-ca", &received).await?;
    let error = refused(&forwarder(&format!("https://127.0.0.1:{port}/hook"), &options)?).await?;
    assert!(error.contains("UnknownIssuer"), "{error}");

    assert!(received.referrals().is_empty());
    Ok(())
}

#[tokio::test]
async fn plain_http_goes_to_loopback_only_unless_allowed() -> TestResult {
    let received = Arc::new(Received::default());
    let port = http_endpoint(&received).await?;
    let forwarder = forwarder(&format!("http://127.0.0.1:{port}/hook"), &ForwardOptions::default())?;
    let offered = referral();
    let decision = tokio::time::timeout(Duration::from_secs(20), forwarder.referral(&offered)).await?;
    assert_eq!(decision, Some(Decision::Accept));
    delivered_once(&received, &offered)?;

    for remote in ["http://192.0.2.10:8080/hook", "http://caue77.example.fr/hook", "http://[2001:db8::1]/hook"] {
        let error = Forwarder::new(remote, HMAC_KEY.to_vec(), CancellationToken::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("only accepted to a loopback address"), "{remote}: {error}");
        assert!(error.contains("--allow-insecure-http"), "{remote}: {error}");
        let allowed = ForwardOptions { allow_insecure_http: true, ..Default::default() };
        assert!(forwarder_ok(remote, &allowed), "{remote} with --allow-insecure-http");
    }
    Ok(())
}

fn forwarder_ok(url: &str, options: &ForwardOptions) -> bool {
    Forwarder::with_options(url, HMAC_KEY.to_vec(), options, CancellationToken::new()).is_ok()
}

/// The binary refuses a bad forward setting at start, in one line, before it connects to NATS.
#[test]
fn the_binary_refuses_a_bad_forward_setting_at_start() -> TestResult {
    let pki = Pki::new()?;
    let key = pki.path("hmac.key");
    std::fs::write(&key, HMAC_KEY)?;
    let key = key.to_string_lossy().into_owned();
    let run = |url: &str, extra: &[&str]| -> Result<(bool, String), BoxError> {
        let out = Command::new(env!("CARGO_BIN_EXE_id77-referral-consumer"))
            .args(["--provider", "caue77", "--nats-url", "nats://127.0.0.1:9", "--mode", "forward", "--url", url])
            .args(["--hmac-key-file", &key])
            .args(extra)
            .env_remove("ID77_FORWARD_CA_FILE")
            .env_remove("ID77_FORWARD_ALLOW_INSECURE_HTTP")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    let (ok, stderr) = run("http://192.0.2.10/hook", &[])?;
    assert!(!ok && stderr.contains("--allow-insecure-http"), "{stderr}");
    let (ok, stderr) = run("https://127.0.0.1:9/hook", &["--ca-file", "/nonexistent/ca.pem"])?;
    assert!(!ok && stderr.contains("--ca-file /nonexistent/ca.pem"), "{stderr}");
    let (ok, stderr) = run("https://127.0.0.1:9/hook", &["--ca-file", &key])?;
    assert!(!ok && stderr.contains("no PEM certificate"), "{stderr}");
    eprintln!("last refusal at start: {stderr}");
    Ok(())
}
