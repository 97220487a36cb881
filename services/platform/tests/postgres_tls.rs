//! PostgreSQL over TLS: each test starts a PostgreSQL server of its own (its own data directory, socket
//! directory and free port on 127.0.0.1) with `ssl = on` and only `hostssl` lines in pg_hba.conf, a CA and a
//! server certificate made here with the `openssl` command, and connects the way a service does at start
//! (`db::Target` + `db::connect_to`: create the database, migrate). The server is stopped and its directory
//! removed when the test ends, also when it fails (`Server`'s Drop).
//!
//! Needs PostgreSQL's server binaries (`ID77_PG_BIN`, else `pg_config --bindir`, else the newest
//! /usr/lib/postgresql/<version>/bin) and `openssl`. As root, the server runs as the `postgres` user (runuser).
//!
//! Run: cargo test -p id77-platform --test postgres_tls

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use id77_platform::db::{self, Target};
use sqlx::migrate::Migrator;

/// A certificate authority made for one test.
struct Ca {
    cert: PathBuf,
    key: PathBuf,
}

/// A PostgreSQL server of the test's own, stopped and removed on drop.
struct Server {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    started: bool,
}

impl Server {
    /// Makes `dir`, a CA (`ca.crt`) and a server certificate for `names` (`DNS:...`/`IP:...` entries) signed by
    /// it, then starts a TLS-only server with them.
    fn start(label: &str, names: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "id77-pgtls-{label}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let as_postgres = run_output(Command::new("id").arg("-u")).trim() == "0";
        let mut server = Self { dir, bin: pg_bin(), as_postgres, port: 0, started: false };
        let ca = server.make_ca("ca");
        server.make_server_cert(&ca, names);
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&server.dir));
        }
        // PostgreSQL refuses a key that others may read.
        run(Command::new("chmod").arg("600").arg(server.dir.join("server.key")));
        let data = server.dir.join("data");
        server.pg(
            "initdb",
            &["-D", path(&data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        );
        server.port = free_port();
        let dir = path(&server.dir);
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\nfsync = off\n\
             max_connections = 20\n",
            server.port
        );
        append(&data.join("postgresql.conf"), &conf);
        // TLS only over TCP: a connection without TLS matches no line.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("pg_hba.conf");
        let log = server.dir.join("server.log");
        server.pg("pg_ctl", &["-D", path(&data), "-l", path(&log), "-w", "-t", "60", "start"]);
        server.started = true;
        server
    }

    /// A self-signed CA `<name>.crt` / `<name>.key` in the test's directory.
    fn make_ca(&self, name: &str) -> Ca {
        let ca = Ca { cert: self.dir.join(format!("{name}.crt")), key: self.dir.join(format!("{name}.key")) };
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", &format!("/CN=id77 test {name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca.key)
            .arg("-out")
            .arg(&ca.cert));
        ca
    }

    /// `server.crt` / `server.key`, for `names`, signed by `ca`.
    fn make_server_cert(&self, ca: &Ca, names: &str) {
        let (key, csr, cert, ext) = (
            self.dir.join("server.key"),
            self.dir.join("server.csr"),
            self.dir.join("server.crt"),
            self.dir.join("ext"),
        );
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("extensions");
        run(Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=id77 test server", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca.cert)
            .arg("-CAkey")
            .arg(&ca.key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The URL of database `db` on this server through `host`, with query `params`.
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{params}", self.port)
    }

    /// Runs PostgreSQL's `tool` (as the postgres user when we are root).
    fn pg(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args);
        if let Err(e) = try_run(&mut cmd) {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            panic!("{e}\nserver log:\n{log}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.started {
            let data = self.dir.join("data");
            let exe = self.bin.join("pg_ctl");
            let mut cmd = if self.as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            let _ = cmd.arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's server binaries.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ID77_PG_BIN").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "PostgreSQL's server binaries (initdb, pg_ctl) not found: set ID77_PG_BIN or install postgresql (make deps)",
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).expect("postgresql.conf");
    f.write_all(text.as_bytes()).expect("postgresql.conf");
}

fn try_run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(cmd: &mut Command) {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"));
}

fn run_output(cmd: &mut Command) -> String {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn no_migrations() -> Migrator {
    Migrator::with_migrations(Vec::new())
}

/// What a service's `main` prints when its start fails (`Error: {:?}`): one line, since the error has no cause
/// chain (a backtrace follows only when RUST_BACKTRACE is set, as in `cargo test`, never in the pods).
fn printed(error: &anyhow::Error) -> String {
    assert_eq!(error.chain().count(), 1, "no \"Caused by\" lines: {error:?}");
    let text = format!("Error: {error}");
    assert!(!text.contains('\n'), "the error is one line: {text}");
    text
}

/// Whether the pool's own connection is TLS, as the server sees it.
async fn is_tls(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("pg_stat_ssl")
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_over_tls() {
    let server = Server::start("ok", "DNS:localhost,IP:127.0.0.1");
    // ID77_DATABASE_CA_FILE (given explicitly, as the service does from the variable), by IP and by name.
    for host in ["127.0.0.1", "localhost"] {
        let url = server.url(host, "id77_tls_test", "sslmode=verify-full");
        let target = Target::new(&url, Some(&server.ca())).expect("target");
        let pool = db::connect_to(&target, &no_migrations(), 2).await.unwrap_or_else(|e| panic!("{host}: {e:?}"));
        assert!(is_tls(&pool).await, "{host}: the connection is TLS");
        // The platform's migrations ran over it.
        let outbox: bool =
            sqlx::query_scalar("SELECT to_regclass('outbox') IS NOT NULL").fetch_one(&pool).await.unwrap();
        assert!(outbox, "migrated");
        pool.close().await;
    }
    // The URL's sslrootcert works too (ID77_DATABASE_CA_FILE unset), and verify-ca.
    let url =
        server.url("127.0.0.1", "id77_tls_test", &format!("sslmode=verify-ca&sslrootcert={}", path(&server.ca())));
    let target = Target::new(&url, None).expect("target");
    let pool = db::connect_to(&target, &no_migrations(), 2).await.expect("sslrootcert in the URL");
    assert!(is_tls(&pool).await);
    pool.close().await;
}

#[tokio::test]
async fn a_wrong_ca_fails_with_one_line_naming_the_ca_setting() {
    let server = Server::start("wrongca", "DNS:localhost,IP:127.0.0.1");
    let other = server.make_ca("other-ca");
    let url = server.url("127.0.0.1", "id77_tls_test", "sslmode=verify-full");
    let target = Target::new(&url, Some(&other.cert)).expect("target");
    let error = db::connect_to(&target, &no_migrations(), 2).await.expect_err("a CA that did not sign the server");
    let line = printed(&error);
    let expected = format!(
        "Error: database TLS: the server certificate of 127.0.0.1:{} is not signed by the CA in ID77_DATABASE_CA_FILE \
         ({}): set ID77_DATABASE_CA_FILE to the CA that signed it",
        server.port,
        other.cert.display()
    );
    assert!(line.starts_with(&expected), "{line}");
    println!("wrong CA: {line}");

    // No CA file at all: the system's roots do not know the test's CA.
    let target = Target::new(&url, None).expect("target");
    let error = db::connect_to(&target, &no_migrations(), 2).await.expect_err("no CA");
    let line = printed(&error);
    assert!(
        line.contains("is not signed by a CA this process trusts")
            && line.contains("set ID77_DATABASE_CA_FILE to the CA that signed it"),
        "{line}"
    );
    println!("no CA: {line}");
}

#[tokio::test]
async fn a_wrong_host_name_fails_with_one_line_naming_the_url() {
    // The certificate names only db.example; the service is pointed at 127.0.0.1.
    let server = Server::start("wronghost", "DNS:db.example");
    let url = server.url("127.0.0.1", "id77_tls_test", "sslmode=verify-full");
    let target = Target::new(&url, Some(&server.ca())).expect("target");
    let error = db::connect_to(&target, &no_migrations(), 2).await.expect_err("a host the certificate does not name");
    let line = printed(&error);
    let expected = format!(
        "Error: database TLS: the server certificate of 127.0.0.1:{} does not match host 127.0.0.1: set the host of \
         ID77_DATABASE_URL to a name in the certificate",
        server.port
    );
    assert!(line.starts_with(&expected), "{line}");
    assert!(line.contains("db.example"), "the names the certificate holds are shown: {line}");
    println!("wrong host: {line}");

    // verify-ca checks the chain only: the same server is accepted.
    let url = server.url("127.0.0.1", "id77_tls_test", "sslmode=verify-ca");
    let target = Target::new(&url, Some(&server.ca())).expect("target");
    let pool = db::connect_to(&target, &no_migrations(), 2).await.expect("verify-ca");
    assert!(is_tls(&pool).await);
    pool.close().await;
}

#[tokio::test]
async fn sslmode_disable_to_a_tls_only_server_fails_clearly() {
    let server = Server::start("disable", "DNS:localhost,IP:127.0.0.1");
    let url = server.url("127.0.0.1", "id77_tls_test", "sslmode=disable");
    let target = Target::new(&url, None).expect("target");
    let error = db::connect_to(&target, &no_migrations(), 2).await.expect_err("no TLS to a hostssl-only server");
    let line = printed(&error);
    let expected = format!(
        "Error: database TLS: the server at 127.0.0.1:{} accepts only TLS connections but sslmode=disable in \
         ID77_DATABASE_URL does not use TLS: set sslmode=verify-full in ID77_DATABASE_URL",
        server.port
    );
    assert!(line.starts_with(&expected), "{line}");
    println!("sslmode=disable: {line}");

    // A CA file with a mode that would ignore it is refused before connecting.
    let url = server.url("127.0.0.1", "id77_tls_test", "sslmode=prefer");
    let error = Target::new(&url, Some(&server.ca())).expect_err("prefer with a CA");
    let line = printed(&error);
    assert!(
        line.starts_with(
            "Error: database TLS: ID77_DATABASE_CA_FILE is set but sslmode=prefer does not check the server \
             certificate: add sslmode=verify-full to ID77_DATABASE_URL"
        ),
        "{line}"
    );
    println!("prefer with a CA: {line}");
}
