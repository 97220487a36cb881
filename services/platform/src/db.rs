//! One PostgreSQL database per service: created if missing, migrated at start-up (platform tables first,
//! then the service's own), under sqlx's advisory lock so replicas can start together.
//!
//! TLS (rustls, ring): `sslmode` in the database URL as with libpq (`disable`, `allow` (taken as `disable`),
//! `prefer` (the default: TLS when the server offers it, certificate not checked), `require` (TLS, certificate
//! not checked), `verify-ca` (chains to a trusted CA), `verify-full` (and names the URL's host)); `PGSSLMODE`
//! when the URL has none. The trusted CAs are the system's roots plus one CA file: `ID77_DATABASE_CA_FILE`
//! ([`crate::config::DATABASE_CA_FILE_ENV`], the documented way), else the URL's `sslrootcert`, else
//! `PGSSLROOTCERT`. A CA file needs `verify-ca` or `verify-full` (`require` is upgraded to `verify-ca`, like
//! libpq); with `prefer`, `allow` or `disable` the service refuses to start rather than ignore it.
//!
//! Connecting at start is tried once, never retried: a refused certificate, a host name the certificate does
//! not name, a server that wants TLS when the URL disables it (or the reverse) fail with one line that names
//! the setting to fix, e.g.
//! `database TLS: the server certificate of 127.0.0.1:5432 is not signed by the CA in ID77_DATABASE_CA_FILE
//! (/etc/id77/postgresql/ca.crt): set ID77_DATABASE_CA_FILE to the CA that signed it`. `main` returns it and
//! the process exits with status 1.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::DATABASE_CA_FILE_ENV;

/// Outbox and inbox tables, versions below 100.
static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The setting the database URL comes from, named in errors.
const URL_SETTING: &str = "ID77_DATABASE_URL";

/// The platform's migrations followed by the service's own (which must use versions >= 100).
pub fn combined_migrator(service: &Migrator) -> anyhow::Result<Migrator> {
    let mut all: Vec<_> = PLATFORM_MIGRATOR.iter().cloned().collect();
    for m in service.iter() {
        anyhow::ensure!(m.version >= 100, "service migration {} must use a version >= 100", m.version);
        all.push(m.clone());
    }
    Ok(Migrator::with_migrations(all))
}

/// Where the CA file comes from.
#[derive(Debug, Clone)]
struct CaSetting {
    /// How an operator sets it: `ID77_DATABASE_CA_FILE`, `sslrootcert in ID77_DATABASE_URL`, `PGSSLROOTCERT`.
    name: &'static str,
    /// The file (or `inline PEM` for a `PGSSLROOTCERT` that holds the certificate itself).
    path: String,
}

/// A database to connect to: the URL's options with the CA applied and checked, and what errors name.
#[derive(Debug, Clone)]
pub struct Target {
    options: PgConnectOptions,
    ca: Option<CaSetting>,
}

impl Target {
    /// `url` with the CA of `ID77_DATABASE_CA_FILE` when it is set.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        Self::new(url, crate::config::database_ca_file().as_deref())
    }

    /// `url` with `ca_file` (the value of `ID77_DATABASE_CA_FILE`) when given. Refuses a CA file that cannot be
    /// read or holds no certificate, and a CA with an `sslmode` that would ignore it.
    pub fn new(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        // The URL may hold a password: never repeat it.
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid {URL_SETTING} {}: {e}", redact(url)))?;
        let ca = match ca_file {
            Some(path) => {
                options = options.ssl_root_cert(path);
                Some(CaSetting { name: DATABASE_CA_FILE_ENV, path: path.display().to_string() })
            }
            None => url_root_cert(url)
                .map(|path| CaSetting { name: "sslrootcert in ID77_DATABASE_URL", path })
                .or_else(|| {
                    let value = std::env::var("PGSSLROOTCERT").ok().filter(|v| !v.trim().is_empty())?;
                    let path = if value.trim_start().starts_with("-----BEGIN") { "inline PEM".into() } else { value };
                    Some(CaSetting { name: "PGSSLROOTCERT", path })
                }),
        };
        if let Some(ca) = &ca {
            match options.get_ssl_mode() {
                PgSslMode::VerifyCa | PgSslMode::VerifyFull => {}
                // libpq checks the chain with `require` when a CA file is given; sqlx would not.
                PgSslMode::Require => options = options.ssl_mode(PgSslMode::VerifyCa),
                mode => anyhow::bail!(
                    "database TLS: {} is set but sslmode={} does not check the server certificate: add \
                     sslmode=verify-full to {URL_SETTING}",
                    ca.name,
                    mode_name(mode)
                ),
            }
            if ca.path != "inline PEM" {
                let pem = std::fs::read(&ca.path).map_err(|e| {
                    anyhow::anyhow!("database TLS: cannot read the CA file of {} ({}): {e}", ca.name, ca.path)
                })?;
                anyhow::ensure!(
                    String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
                    "database TLS: the CA file of {} ({}) holds no PEM certificate",
                    ca.name,
                    ca.path
                );
            }
        }
        Ok(Self { options, ca })
    }

    /// The connect options (with statement logging off).
    pub fn options(&self) -> PgConnectOptions {
        self.options.clone().disable_statement_logging()
    }

    /// One connection to `database` (default: the URL's), with a one-line error naming the setting to fix.
    pub async fn connect_one(&self, database: Option<&str>) -> anyhow::Result<PgConnection> {
        let mut options = self.options();
        if let Some(name) = database {
            options = options.database(name);
        }
        options.connect().await.map_err(|e| self.explain(&e))
    }

    /// `host:port` (or the socket) and the database, as the errors show them.
    fn server(&self) -> String {
        match self.options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", self.options.get_host(), self.options.get_port()),
        }
    }

    /// One line saying what failed and which setting to fix (no password, no cause chain).
    pub fn explain(&self, error: &sqlx::Error) -> anyhow::Error {
        let text = error_text(error);
        let server = self.server();
        let host = self.options.get_host();
        let mode = mode_name(self.options.get_ssl_mode());
        let trusted = match &self.ca {
            Some(ca) => format!("the CA in {} ({})", ca.name, ca.path),
            None => format!("a CA this process trusts (the system's roots; {DATABASE_CA_FILE_ENV} is not set)"),
        };
        let ca_setting = self.ca.as_ref().map_or(DATABASE_CA_FILE_ENV, |ca| ca.name);
        let line = if text.contains("UnknownIssuer") || text.contains("BadSignature") {
            format!(
                "database TLS: the server certificate of {server} is not signed by {trusted}: set {ca_setting} to \
                 the CA that signed it ({text})"
            )
        } else if text.contains("not valid for name") || text.contains("NotValidForName") {
            format!(
                "database TLS: the server certificate of {server} does not match host {host}: set the host of \
                 {URL_SETTING} to a name in the certificate ({text})"
            )
        } else if text.contains("certificate expired") || text.contains("not valid yet") || text.contains("Expired") {
            format!(
                "database TLS: the server certificate of {server} is outside its validity period: renew the \
                 server's certificate ({text})"
            )
        } else if text.contains("server does not support TLS") {
            format!(
                "database TLS: the server at {server} does not offer TLS, which sslmode={mode} in {URL_SETTING} \
                 requires: turn ssl on in the server or fix the host and port of {URL_SETTING}"
            )
        } else if text.contains("no pg_hba.conf entry") && (text.contains("no encryption") || text.contains("SSL off"))
        {
            format!(
                "database TLS: the server at {server} accepts only TLS connections but sslmode={mode} in \
                 {URL_SETTING} does not use TLS: set sslmode=verify-full in {URL_SETTING} (and {DATABASE_CA_FILE_ENV}) \
                 ({text})"
            )
        } else if text.contains("invalid peer certificate") || text.contains("received fatal alert") {
            format!("database TLS: the TLS handshake with {server} failed (sslmode={mode}, CA: {trusted}): {text}")
        } else {
            format!(
                "database: cannot connect to {server} as {} ({URL_SETTING}, sslmode={mode}): {text}",
                self.options.get_username()
            )
        };
        anyhow::Error::msg(line)
    }
}

/// The error and its causes on one line, each cause once.
fn error_text(error: &sqlx::Error) -> String {
    if let sqlx::Error::Database(e) = error {
        // The server's own message (its Display adds the line of PostgreSQL's source that raised it).
        return format!("error returned from database: {}", e.message()).replace(['\n', '\r'], " ");
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text.replace(['\n', '\r'], " ")
}

fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// The URL's `sslrootcert` (or its sqlx aliases), percent-decoded.
fn url_root_cert(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        matches!(key, "sslrootcert" | "ssl-root-cert" | "ssl-ca").then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates the database named in `url` if it does not exist yet (idempotent, safe under races).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    ensure_database_at(&Target::from_url(url)?).await
}

/// [`ensure_database`] for a [`Target`].
pub async fn ensure_database_at(target: &Target) -> anyhow::Result<()> {
    let name = target.options.get_database().unwrap_or("postgres").to_owned();
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be [A-Za-z0-9_]"
    );
    let mut admin = target.connect_one(Some("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let create = format!("CREATE DATABASE \"{name}\"");
        match sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "database created"),
            // 42P04 duplicate_database, 23505 unique_violation: another replica won the race.
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// How long a pooled connection may sit idle and still be handed out without a ping.
const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Connects to the service's database, creating and migrating it first. The CA is `ID77_DATABASE_CA_FILE`'s.
pub async fn connect(url: &str, service_migrations: &Migrator, max_connections: u32) -> anyhow::Result<PgPool> {
    connect_to(&Target::from_url(url)?, service_migrations, max_connections).await
}

/// [`connect`] for a [`Target`] (e.g. with a CA file given explicitly).
pub async fn connect_to(
    target: &Target,
    service_migrations: &Migrator,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    ensure_database_at(target).await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // A connection back from the pool is pinged only if it sat idle a while (a database restart or a dropped
        // link shows there): sqlx pinged on every acquire, a round trip per transaction and per read (issue 23).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_AFTER_IDLE {
                    return Ok(true);
                }
                // A dead connection is dropped and another one taken.
                Ok(conn.ping().await.is_ok())
            })
        })
        .connect_with(target.options())
        .await
        .map_err(|e| target.explain(&e))?;
    combined_migrator(service_migrations)?.run(&pool).await.context("running migrations")?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_root_cert_is_found_and_decoded() {
        assert_eq!(
            url_root_cert("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt").as_deref(),
            Some("/etc/ca.crt")
        );
        assert_eq!(url_root_cert("postgres://u@h/db?ssl-ca=/ca.pem").as_deref(), Some("/ca.pem"));
        assert_eq!(url_root_cert("postgres://u@h/db?sslmode=require"), None);
        assert_eq!(url_root_cert("postgres://u@h/db"), None);
    }

    #[test]
    fn passwords_are_not_repeated() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn a_ca_file_needs_a_verifying_mode() {
        let dir = std::env::temp_dir().join(format!("id77-db-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let err = Target::new("postgres://u@h/db?sslmode=prefer", Some(&ca)).unwrap_err().to_string();
        assert!(
            err.contains("ID77_DATABASE_CA_FILE is set but sslmode=prefer") && err.contains("verify-full"),
            "{err}"
        );
        let target = Target::new("postgres://u@h/db?sslmode=require", Some(&ca)).unwrap();
        assert!(matches!(target.options.get_ssl_mode(), PgSslMode::VerifyCa));
        assert!(Target::new("postgres://u@h/db?sslmode=verify-full", Some(&ca)).is_ok());
        let missing = dir.join("missing.crt");
        let err = Target::new("postgres://u@h/db?sslmode=verify-full", Some(&missing)).unwrap_err().to_string();
        assert!(err.starts_with("database TLS: cannot read the CA file of ID77_DATABASE_CA_FILE"), "{err}");
        std::fs::write(&ca, "not a certificate").unwrap();
        let err = Target::new("postgres://u@h/db?sslmode=verify-full", Some(&ca)).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let err = Target::new("postgres://u:pw@h/db?sslmode=bogus", None).unwrap_err().to_string();
        assert!(err.starts_with("invalid ID77_DATABASE_URL postgres://u:***@h/db") && !err.contains("pw"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
