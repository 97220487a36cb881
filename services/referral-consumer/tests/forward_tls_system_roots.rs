//! Forward mode trusts the system's roots: here `SSL_CERT_FILE` (honoured by the system store loader, as in the
//! container image) names the endpoint's CA, and no `--ca-file` is given. Its own test binary: the variable is set
//! before any thread of the test starts, and no other test sees it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use id77_referral_consumer::forward::ForwardOptions;
use id77_referral_consumer::{Decision, Handler};
use support::{Pki, Received, TestResult, delivered_once, forwarder, https_endpoint, referral};

#[test]
fn the_system_roots_are_trusted_without_a_ca_file() -> TestResult {
    let pki = Pki::new()?;
    // SAFETY: the only test of this binary, before it starts a runtime or any thread that reads the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", pki.path("ca.pem"));
        std::env::remove_var("SSL_CERT_DIR");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let received = Arc::new(Received::default());
        let port = https_endpoint(&pki, "good", &received).await?;
        let trusting = forwarder(&format!("https://127.0.0.1:{port}/hook"), &ForwardOptions::default())?;
        let offered = referral();
        let decision = tokio::time::timeout(Duration::from_secs(20), trusting.referral(&offered)).await?;
        assert_eq!(decision, Some(Decision::Accept));
        delivered_once(&received, &offered)?;
        // A certificate for another name is still refused.
        let port = https_endpoint(&pki, "wrong-name", &received).await?;
        let wrong_name = forwarder(&format!("https://127.0.0.1:{port}/hook"), &ForwardOptions::default())?;
        let error = wrong_name.offer_once(&referral()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("not valid for name"), "{error}");
        Ok(())
    })
}
