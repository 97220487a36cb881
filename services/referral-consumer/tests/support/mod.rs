//! The local endpoint of the forward tests: its own CA and certificates (made with the `openssl` command), served
//! over HTTPS with rustls or over plain HTTP with axum, checking each referral's signature.
#![allow(dead_code)] // each test binary uses its part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use id77_proto::routing::v1::ReferralOffered;
use id77_referral_consumer::forward::{ForwardOptions, Forwarder, SIGNATURE_HEADER, signature};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

pub const HMAC_KEY: &[u8] = b"cle-partagee-avec-le-caue-de-seine-et-marne";

/// A scratch directory, removed at the end.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args` (split on white space) in `dir`.
pub fn openssl(dir: &Path, args: &str) -> TestResult {
    let out = Command::new("openssl").args(args.split_whitespace()).current_dir(dir).output().map_err(|e| {
        format!("the `openssl` command is needed to make the test certificates (apt-get install openssl): {e}")
    })?;
    if !out.status.success() {
        return Err(format!("openssl {args}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// Two CAs and three server certificates: `good` (127.0.0.1 and localhost, by `ca`), `wrong-name`
/// (other.example, by `ca`) and `by-other-ca` (127.0.0.1 and localhost, by `other-ca`).
pub struct Pki {
    scratch: Scratch,
}

impl Pki {
    pub fn new() -> Result<Self, BoxError> {
        let dir = std::env::temp_dir().join(format!("id77-forward-tls-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let scratch = Scratch(dir);
        let dir = scratch.0.as_path();
        for ca in ["ca", "other-ca"] {
            openssl(
                dir,
                &format!(
                    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {ca}.key -out {ca}.pem \
                     -days 2 -subj /CN=id77-test-{ca} -addext basicConstraints=critical,CA:TRUE \
                     -addext keyUsage=critical,keyCertSign,cRLSign"
                ),
            )?;
        }
        for (name, ca, san) in [
            ("good", "ca", "IP:127.0.0.1,DNS:localhost"),
            ("wrong-name", "ca", "DNS:other.example"),
            ("by-other-ca", "other-ca", "IP:127.0.0.1,DNS:localhost"),
        ] {
            let ext = format!(
                "subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n"
            );
            std::fs::write(dir.join(format!("{name}.ext")), ext)?;
            openssl(
                dir,
                &format!(
                    "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {name}.key -out {name}.csr \
                     -subj /CN=id77-test-endpoint"
                ),
            )?;
            let serial = format!("0x{}", Uuid::new_v4().simple());
            openssl(
                dir,
                &format!(
                    "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -set_serial {serial} -days 2 \
                     -extfile {name}.ext -out {name}.pem"
                ),
            )?;
        }
        Ok(Self { scratch })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.scratch.0.join(file)
    }

    pub fn acceptor(&self, name: &str) -> Result<TlsAcceptor, BoxError> {
        let chain = vec![CertificateDer::from_pem_file(self.path(&format!("{name}.pem")))?];
        let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key")))?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// A TCP listener that hands axum only the connections whose TLS handshake succeeded.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            // A client that refuses the certificate ends the handshake: wait for the next one.
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// What the endpoint received: each body with a valid signature and its `X-Id77-Referral-Id`; bad signatures.
#[derive(Default)]
pub struct Received {
    pub referrals: Mutex<Vec<(Value, String)>>,
    pub bad_signatures: Mutex<usize>,
}

impl Received {
    pub fn referrals(&self) -> Vec<(Value, String)> {
        self.referrals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn bad_signatures(&self) -> usize {
        self.bad_signatures.lock().map(|n| *n).unwrap_or(usize::MAX)
    }
}

/// The organisation's endpoint: checks the signature, accepts every referral.
pub async fn hook(State(received): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let expected = signature(HMAC_KEY, &body);
    if headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        if let Ok(mut n) = received.bad_signatures.lock() {
            *n += 1;
        }
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = headers.get("X-Id77-Referral-Id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if let Ok(mut referrals) = received.referrals.lock() {
        referrals.push((value, id));
    }
    (StatusCode::OK, json!({"decision": "accept"}).to_string())
}

pub fn router(received: &Arc<Received>) -> Router {
    Router::new().route("/hook", post(hook)).with_state(received.clone())
}

/// Serves the endpoint over HTTPS with the certificate `name`; returns its port.
pub async fn https_endpoint(pki: &Pki, name: &str, received: &Arc<Received>) -> Result<u16, BoxError> {
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let port = tcp.local_addr()?.port();
    let listener = TlsListener { tcp, acceptor: pki.acceptor(name)? };
    let app = router(received);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

/// Serves the endpoint over plain HTTP on 127.0.0.1; returns its port.
pub async fn http_endpoint(received: &Arc<Received>) -> Result<u16, BoxError> {
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let port = tcp.local_addr()?.port();
    let app = router(received);
    tokio::spawn(async move { axum::serve(tcp, app).await });
    Ok(port)
}

pub fn referral() -> ReferralOffered {
    ReferralOffered {
        referral_id: Uuid::new_v4().to_string(),
        request_id: Uuid::new_v4().to_string(),
        provider_code: "caue77".into(),
        offer_code: "caue-conseil".into(),
        subject: "Réfection de la place de l'église".into(),
        attempt: 1,
        ..Default::default()
    }
}

pub fn forwarder(url: &str, options: &ForwardOptions) -> Result<Forwarder, BoxError> {
    let mut forwarder = Forwarder::with_options(url, HMAC_KEY.to_vec(), options, CancellationToken::new())
        .map_err(|e| e.to_string())?;
    forwarder.initial_backoff = Duration::from_millis(50);
    Ok(forwarder)
}

/// The referral reached the endpoint once, signed, and its answer came back.
pub fn delivered_once(received: &Received, referral: &ReferralOffered) -> TestResult {
    let got = received.referrals();
    assert_eq!(received.bad_signatures(), 0);
    assert_eq!(got.len(), 1, "{got:?}");
    let (body, header_id) = &got[0];
    assert_eq!(body["type"], "referral.offered");
    assert_eq!(body["referral_id"], referral.referral_id.as_str());
    assert_eq!(body["subject"], referral.subject.as_str());
    assert_eq!(header_id, &referral.referral_id);
    Ok(())
}
