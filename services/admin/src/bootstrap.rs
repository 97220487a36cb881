//! `id77-admin bootstrap-db`: each service's PostgreSQL role and database, with least privilege (issue 16,
//! docs/bootstrap.md).
//!
//! For each service, as an administrator (a superuser, or a role with CREATEROLE and CREATEDB), idempotently:
//! - a LOGIN role (`id77_<service>`) that is NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, with
//!   the service's password (sent as a SCRAM-SHA-256 verifier, never in clear; changed only when it differs);
//! - a database (`id77_<service>`) owned by that role, on which PUBLIC has no privilege (so no other role may
//!   connect to it);
//! - in that database, the `public` schema owned by the role (or by `pg_database_owner`, PostgreSQL 15's default,
//!   which is the database's owner) and without CREATE for PUBLIC.
//!
//! Every statement is one of the templates below, formatted by the server with `format()` (`%I` for names,
//! `%L` for the password verifier) from bound parameters: no SQL is built by concatenation here. `--print-sql`
//! prints the same templates as a psql script ([`print_sql`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The services with a database, in the order they are bootstrapped by default.
pub const DEFAULT_SERVICES: [&str; 6] = ["membership", "catalogue", "requests", "routing", "billing", "portal"];
/// Prefix of the default role and database names (`id77_<service>`, dashes as underscores).
pub const DEFAULT_NAME_PREFIX: &str = "id77_";
/// Environment variable holding a service's password: this prefix and the service's name in capitals (dashes as
/// underscores), e.g. `ID77_BOOTSTRAP_PASSWORD_MEMBERSHIP`.
pub const PASSWORD_ENV_PREFIX: &str = "ID77_BOOTSTRAP_PASSWORD_";
/// Exit status when something could not be done (the error is on stderr).
pub const EXIT_FAILED: u8 = 2;

/// The attributes every service role has, and keeps: it may log in, and nothing else.
pub const ROLE_ATTRIBUTES: &str = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

/// Statement templates, formatted by the server (`format(template, ...)`): `%I` an identifier, `%L` a literal.
pub mod sql {
    /// A new role: name, password verifier.
    pub const CREATE_ROLE: &str =
        "CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L";
    /// An existing role back to the service attributes: name.
    pub const RESTRICT_ROLE: &str = "ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
    /// A role's password: name, password (or its verifier).
    pub const SET_PASSWORD: &str = "ALTER ROLE %I PASSWORD %L";
    /// An administrator that is not a superuser must be a member of a role to give it a database.
    pub const GRANT_ROLE_TO_ADMIN: &str = "GRANT %I TO CURRENT_USER";
    /// database, owner.
    pub const CREATE_DATABASE: &str = "CREATE DATABASE %I OWNER %I";
    /// database, owner.
    pub const SET_DATABASE_OWNER: &str = "ALTER DATABASE %I OWNER TO %I";
    /// database: only its owner (and superusers) may then connect.
    pub const REVOKE_DATABASE: &str = "REVOKE ALL ON DATABASE %I FROM PUBLIC";
    /// Inside the database: role.
    pub const CREATE_PUBLIC_SCHEMA: &str = "CREATE SCHEMA public AUTHORIZATION %I";
    /// Inside the database: role.
    pub const SET_SCHEMA_OWNER: &str = "ALTER SCHEMA public OWNER TO %I";
    /// Inside the database (PostgreSQL 15's default already; older servers grant it).
    pub const REVOKE_SCHEMA_CREATE: &str = "REVOKE CREATE ON SCHEMA public FROM PUBLIC";
}

/// `SERVICE[=DATABASE[:ROLE]]` as given on the command line; names left out follow the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub service: String,
    pub database: Option<String>,
    pub role: Option<String>,
}

impl FromStr for TargetSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (service, names) = match text.split_once('=') {
            Some((service, names)) => (service, Some(names)),
            None => (text, None),
        };
        let (database, role) = match names {
            None => (None, None),
            Some(names) => match names.split_once(':') {
                Some((database, role)) => (Some(database), Some(role)),
                None => (Some(names), None),
            },
        };
        let service = service.trim();
        if !valid_service(service) {
            return Err(format!("service {service:?} must be lowercase letters, digits or dashes"));
        }
        for name in database.iter().chain(role.iter()) {
            if !valid_identifier(name) {
                return Err(format!("{name:?} must be 1 to 63 ASCII letters, digits or underscores"));
            }
        }
        Ok(Self { service: service.to_owned(), database: database.map(str::to_owned), role: role.map(str::to_owned) })
    }
}

fn valid_service(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A role or database name: 1 to 63 ASCII letters, digits or underscores, as the chart's schema and the services
/// accept for a database (it is quoted all the same, so its case is kept).
pub fn valid_identifier(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One service's role and database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub database: String,
    pub role: String,
}

impl Target {
    /// Resolves the names left out: `<prefix><service>` (dashes as underscores).
    pub fn resolve(spec: &TargetSpec, prefix: &str) -> anyhow::Result<Self> {
        let default = format!("{prefix}{}", spec.service.replace('-', "_"));
        let database = spec.database.clone().unwrap_or_else(|| default.clone());
        let role = spec.role.clone().unwrap_or(default);
        for name in [&database, &role] {
            anyhow::ensure!(
                valid_identifier(name),
                "{name:?} (service {}) must be 1 to 63 ASCII letters, digits or underscores",
                spec.service
            );
        }
        Ok(Self { service: spec.service.clone(), database, role })
    }
}

/// The targets of a run: the specs given (default: the five services and the portal), names resolved; duplicates
/// refused.
pub fn targets(specs: &[TargetSpec], prefix: &str) -> anyhow::Result<Vec<Target>> {
    let defaults: Vec<TargetSpec> =
        DEFAULT_SERVICES.iter().map(|s| TargetSpec { service: (*s).to_owned(), database: None, role: None }).collect();
    let specs = if specs.is_empty() { &defaults[..] } else { specs };
    let mut out: Vec<Target> = Vec::with_capacity(specs.len());
    for spec in specs {
        let target = Target::resolve(spec, prefix)?;
        for other in &out {
            anyhow::ensure!(other.service != target.service, "service {} is given twice", target.service);
            anyhow::ensure!(
                other.database != target.database && other.role != target.role,
                "services {} and {} would share a database or a role: each service owns its own",
                other.service,
                target.service
            );
        }
        out.push(target);
    }
    Ok(out)
}

/// Where the services' passwords come from: `ID77_BOOTSTRAP_PASSWORD_<SERVICE>`, else `<dir>/<service>/password`
/// (the chart mounts each service's Secret there). The value is used exactly as it is (a trailing newline
/// included), as the service receives it through `PGPASSWORD`.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    pub dir: Option<PathBuf>,
}

impl PasswordSource {
    /// The environment variable of a service's password.
    pub fn env_name(service: &str) -> String {
        format!("{PASSWORD_ENV_PREFIX}{}", service.to_ascii_uppercase().replace('-', "_"))
    }

    /// The file of a service's password under `dir`.
    pub fn file(dir: &Path, service: &str) -> PathBuf {
        dir.join(service).join("password")
    }

    /// A service's password; an error when there is none, or it is empty.
    pub fn password(&self, service: &str) -> anyhow::Result<String> {
        let env = Self::env_name(service);
        let password = match std::env::var(&env) {
            Ok(value) => value,
            Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{env} is not UTF-8"),
            Err(std::env::VarError::NotPresent) => match &self.dir {
                Some(dir) => {
                    let file = Self::file(dir, service);
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading the password of {service} from {}", file.display()))?
                }
                None => anyhow::bail!(
                    "no password for {service}: set {env}, or give --password-dir with {service}/password"
                ),
            },
        };
        anyhow::ensure!(!password.is_empty(), "the password of {service} is empty");
        Ok(password)
    }
}

// --- SCRAM-SHA-256 verifiers ----------------------------------------------------------------------------------

/// Iterations of a new verifier (PostgreSQL's default `scram_iterations`).
pub const SCRAM_ITERATIONS: u32 = 4096;
const SCRAM_SALT_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 for one 32-byte block (RFC 8018), as SCRAM's `Hi()`.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        for (o, b) in out.iter_mut().zip(u) {
            *o ^= b;
        }
    }
    out
}

/// The password as PostgreSQL hashes it: SASLprep'ed when possible, else as it is.
fn normalized(password: &str) -> std::borrow::Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password))
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803), as `pg_authid.rolpassword` holds it.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = salted_password(normalized(password).as_bytes(), salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// A verifier with a new random salt.
pub fn new_scram_verifier(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; SCRAM_SALT_LEN];
    getrandom::getrandom(&mut salt).map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
    Ok(scram_verifier(password, &salt, SCRAM_ITERATIONS))
}

/// Whether a stored SCRAM-SHA-256 verifier is the password's (false for anything else: MD5, none, malformed).
pub fn verifier_matches(verifier: &str, password: &str) -> bool {
    let Some(rest) = verifier.strip_prefix("SCRAM-SHA-256$") else { return false };
    let Some((params, _keys)) = rest.split_once('$') else { return false };
    let Some((iterations, salt)) = params.split_once(':') else { return false };
    let (Ok(iterations), Ok(salt)) = (iterations.parse::<u32>(), BASE64.decode(salt)) else { return false };
    if iterations == 0 || iterations > 10_000_000 {
        return false;
    }
    scram_verifier(password, &salt, iterations) == verifier
}

// --- Running it -------------------------------------------------------------------------------------------------

/// What was done for one service (nothing, on a re-run with the same passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub target: Target,
    pub changes: Vec<String>,
}

/// How long to wait for the server to answer a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(options: &PgConnectOptions, what: &str) -> anyhow::Result<PgConnection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(result) => result.with_context(|| format!("connecting to {what}")),
        Err(_) => anyhow::bail!("connecting to {what}: no answer within {}s", CONNECT_TIMEOUT.as_secs()),
    }
}

/// Formats a template on the server (`format($1, $2, ...)`), then runs the statement it gives.
async fn run(conn: &mut PgConnection, template: &'static str, args: &[&str]) -> anyhow::Result<()> {
    let formatted: String = match args {
        [a] => sqlx::query_scalar("SELECT format($1, $2)").bind(template).bind(a).fetch_one(&mut *conn).await,
        [a, b] => {
            sqlx::query_scalar("SELECT format($1, $2, $3)").bind(template).bind(a).bind(b).fetch_one(&mut *conn).await
        }
        _ => sqlx::query_scalar("SELECT format($1)").bind(template).fetch_one(&mut *conn).await,
    }
    .with_context(|| format!("formatting {template:?}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(formatted)).execute(&mut *conn).await.with_context(|| {
        // The template, never the formatted statement: it may hold a password verifier.
        format!("running {template:?} for {}", args.first().copied().unwrap_or_default())
    })?;
    Ok(())
}

/// The error's SQLSTATE, if the server sent one.
fn sqlstate(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|e| match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        _ => None,
    })
}

struct Admin {
    name: String,
    superuser: bool,
}

/// The administrator's connection options: the URL (its password, or `PGPASSWORD`), and the CA file the server's
/// certificate must chain to, if given (`ID77_DATABASE_CA_FILE`, as the services): it needs `sslmode=verify-full`
/// or `verify-ca` in the URL (`require` is upgraded to `verify-ca`).
pub fn admin_options(admin_url: &str, ca_file: Option<&Path>) -> anyhow::Result<PgConnectOptions> {
    use sqlx::postgres::PgSslMode;
    // The URL may hold a password: never repeat it.
    let mut options = PgConnectOptions::from_str(admin_url)
        .map_err(|e| anyhow::anyhow!("the administrator's database URL is not valid: {e}"))?
        .disable_statement_logging();
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading the PostgreSQL CA file {}", ca.display()))?;
        anyhow::ensure!(
            String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
            "the PostgreSQL CA file {} holds no PEM certificate",
            ca.display()
        );
        options = options.ssl_root_cert(ca);
        match options.get_ssl_mode() {
            PgSslMode::VerifyCa | PgSslMode::VerifyFull => {}
            PgSslMode::Require => options = options.ssl_mode(PgSslMode::VerifyCa),
            _ => anyhow::bail!(
                "a PostgreSQL CA file is given ({}) but the administrator's URL does not ask to check the server's \
                 certificate: add sslmode=verify-full to it",
                ca.display()
            ),
        }
    }
    Ok(options)
}

/// Bootstraps each target with its password, connected with the administrator's `options` ([`admin_options`]).
pub async fn bootstrap(options: &PgConnectOptions, targets: &[(Target, String)]) -> anyhow::Result<Vec<Outcome>> {
    let options = options.clone();
    let server = format!("PostgreSQL at {}:{} as the administrator", options.get_host(), options.get_port());
    let mut conn = connect(&options, &server).await?;
    let (name, superuser, createrole, createdb): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .context("reading the administrator's attributes")?;
    anyhow::ensure!(
        superuser || (createrole && createdb),
        "{name} may not create roles and databases: connect as a superuser, or a role with CREATEROLE and CREATEDB"
    );
    let admin = Admin { name, superuser };
    let mut outcomes = Vec::with_capacity(targets.len());
    for (target, password) in targets {
        let mut changes = Vec::new();
        ensure_role(&mut conn, &admin, target, password, &mut changes)
            .await
            .with_context(|| format!("{}: role {}", target.service, target.role))?;
        ensure_database(&mut conn, target, &mut changes)
            .await
            .with_context(|| format!("{}: database {}", target.service, target.database))?;
        let db_options = options.clone().database(&target.database);
        let mut db = connect(&db_options, &format!("database {}", target.database)).await?;
        let schema = ensure_schema(&mut db, target, &mut changes).await;
        db.close().await.ok();
        schema.with_context(|| format!("{}: schema public of {}", target.service, target.database))?;
        outcomes.push(Outcome { target: target.clone(), changes });
    }
    conn.close().await.ok();
    Ok(outcomes)
}

async fn ensure_role(
    conn: &mut PgConnection,
    admin: &Admin,
    target: &Target,
    password: &str,
    changes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let role = target.role.as_str();
    let attributes: Option<(bool, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles \
         WHERE rolname = $1",
    )
    .bind(role)
    .fetch_optional(&mut *conn)
    .await?;
    match attributes {
        None => {
            let verifier = new_scram_verifier(password)?;
            match run(conn, sql::CREATE_ROLE, &[role, &verifier]).await {
                Ok(()) => changes.push(format!("role {role} created ({ROLE_ATTRIBUTES})")),
                // 42710 duplicate_object: created meanwhile by another run; checked again below.
                Err(e) if sqlstate(&e).as_deref() == Some("42710") => {
                    return Box::pin(ensure_role(conn, admin, target, password, changes)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Some((login, superuser, createdb, createrole, replication, bypassrls)) => {
            if !login || superuser || createdb || createrole || replication || bypassrls {
                run(conn, sql::RESTRICT_ROLE, &[role]).await?;
                changes.push(format!("role {role} restricted to {ROLE_ATTRIBUTES}"));
            }
            // The stored verifier, if this administrator may read it (superusers only): unchanged when it is
            // already the password's. Otherwise the password is set again (same password, new salt).
            let stored: Result<Option<String>, sqlx::Error> =
                sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                    .bind(role)
                    .fetch_one(&mut *conn)
                    .await;
            match stored {
                Ok(Some(verifier)) if verifier_matches(&verifier, password) => {}
                Ok(_) => {
                    run(conn, sql::SET_PASSWORD, &[role, &new_scram_verifier(password)?]).await?;
                    changes.push(format!("role {role}: password changed"));
                }
                Err(_) => {
                    run(conn, sql::SET_PASSWORD, &[role, &new_scram_verifier(password)?]).await?;
                    changes.push(format!(
                        "role {role}: password set (the administrator cannot read pg_authid to compare)"
                    ));
                }
            }
        }
    }
    if !admin.superuser {
        let member: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
            .bind(role)
            .fetch_one(&mut *conn)
            .await?;
        if !member {
            run(conn, sql::GRANT_ROLE_TO_ADMIN, &[role]).await?;
            changes.push(format!("role {role} granted to {} (to give it a database)", admin.name));
        }
    }
    Ok(())
}

async fn ensure_database(conn: &mut PgConnection, target: &Target, changes: &mut Vec<String>) -> anyhow::Result<()> {
    let (database, role) = (target.database.as_str(), target.role.as_str());
    let found: Option<(String, bool)> = sqlx::query_as(
        "SELECT pg_get_userbyid(datdba)::text, EXISTS (SELECT 1 FROM aclexplode(coalesce(datacl, \
         acldefault('d', datdba))) AS a WHERE a.grantee = 0) FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(&mut *conn)
    .await?;
    let public_privileges = match found {
        None => {
            match run(conn, sql::CREATE_DATABASE, &[database, role]).await {
                Ok(()) => changes.push(format!("database {database} created, owned by {role}")),
                // 42P04 duplicate_database: created meanwhile by another run.
                Err(e) if sqlstate(&e).as_deref() == Some("42P04") => {
                    return Box::pin(ensure_database(conn, target, changes)).await;
                }
                Err(e) => return Err(e),
            }
            true
        }
        Some((owner, public_privileges)) => {
            if owner != role {
                run(conn, sql::SET_DATABASE_OWNER, &[database, role]).await?;
                changes.push(format!(
                    "database {database}: owner {owner} -> {role} (objects inside keep their owners: see \
                     docs/bootstrap.md)"
                ));
            }
            public_privileges
        }
    };
    if public_privileges {
        run(conn, sql::REVOKE_DATABASE, &[database]).await?;
        changes.push(format!("database {database}: PUBLIC's privileges revoked (only {role} may connect)"));
    }
    Ok(())
}

async fn ensure_schema(db: &mut PgConnection, target: &Target, changes: &mut Vec<String>) -> anyhow::Result<()> {
    let role = target.role.as_str();
    let found: Option<(String, bool)> = sqlx::query_as(
        "SELECT pg_get_userbyid(nspowner)::text, EXISTS (SELECT 1 FROM aclexplode(coalesce(nspacl, \
         acldefault('n', nspowner))) AS a WHERE a.grantee = 0 AND a.privilege_type = 'CREATE') FROM pg_namespace \
         WHERE nspname = 'public'",
    )
    .fetch_optional(&mut *db)
    .await?;
    let public_create = match found {
        None => {
            run(db, sql::CREATE_PUBLIC_SCHEMA, &[role]).await?;
            changes.push(format!("schema public created, owned by {role}"));
            false
        }
        Some((owner, public_create)) => {
            // pg_database_owner (PostgreSQL 15 and later) is whoever owns the database: the role.
            if owner != role && owner != "pg_database_owner" {
                run(db, sql::SET_SCHEMA_OWNER, &[role]).await?;
                changes.push(format!("schema public: owner {owner} -> {role}"));
            }
            public_create
        }
    };
    if public_create {
        run(db, sql::REVOKE_SCHEMA_CREATE, &[]).await?;
        changes.push("schema public: CREATE revoked from PUBLIC".to_owned());
    }
    Ok(())
}

/// The report: one line per change (`<service>: <change>`), or per service with nothing to change, then a count.
pub fn report(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    let mut total = 0;
    for outcome in outcomes {
        let t = &outcome.target;
        if outcome.changes.is_empty() {
            let _ = writeln!(text, "{}: role {} and database {}: nothing to change", t.service, t.role, t.database);
        }
        for change in &outcome.changes {
            let _ = writeln!(text, "{}: {change}", t.service);
        }
        total += outcome.changes.len();
    }
    let _ = writeln!(text, "bootstrap-db: {} service(s), {total} change(s)", outcomes.len());
    text
}

// --- The SQL, for psql ------------------------------------------------------------------------------------------

/// Stops the script (ON_ERROR_STOP) when a password variable is missing; the warning before it names it.
const MISSING_PASSWORD: &str = "DO $$ BEGIN RAISE EXCEPTION 'a password variable is missing (see above)'; END $$;";

/// psql variable names of a service: `<service>_role`, `<service>_database`, `<service>_password`.
fn var(target: &Target, what: &str) -> String {
    format!("{}_{what}", target.service.replace('-', "_"))
}

/// The same statements as a psql script: idempotent (each statement guarded by what the catalog says), names in
/// psql variables set at the top, passwords from psql variables the operator sets (`-v <service>_password=...`),
/// every name and password quoted by the server (`format()` and `\gexec`). Needs no connection to print.
pub fn print_sql(targets: &[Target]) -> String {
    let mut s = String::new();
    let services: Vec<&str> = targets.iter().map(|t| t.service.as_str()).collect();
    let _ = writeln!(s, "-- Generated by `id77-admin bootstrap-db --print-sql` for: {}.", services.join(", "));
    s.push_str(
        "-- Each service gets a LOGIN role that can do nothing else, and a database that only this role owns and may\n\
         -- connect to; its schema public is the role's, without CREATE for PUBLIC. Run it as a superuser, or a role\n\
         -- with CREATEROLE and CREATEDB, connected to any database (e.g. postgres), with each password in a psql\n\
         -- variable (docs/bootstrap.md):\n",
    );
    let vars: Vec<String> =
        targets.iter().map(|t| format!("-v {}=\"$(cat {}.password)\"", var(t, "password"), t.service)).collect();
    let _ = writeln!(s, "--   psql \"$ADMIN_URL\" -X -v ON_ERROR_STOP=1 {} -f bootstrap.sql", vars.join(" "));
    s.push_str(
        "-- Running it again changes nothing but the passwords (set again each time). The password reaches the server\n\
         -- in the ALTER ROLE statement: do not run it with log_statement = 'ddl' or 'all' (`id77-admin bootstrap-db`\n\
         -- sends SCRAM verifiers instead).\n\n\\set ON_ERROR_STOP on\n",
    );
    for t in targets {
        let pw = var(t, "password");
        let _ = writeln!(
            s,
            "\\if :{{?{pw}}}\n\\else\n\\warn 'no password for {}: psql -v {pw}=...'\n{MISSING_PASSWORD}\n\\endif",
            t.service
        );
    }
    for t in targets {
        let _ = writeln!(s, "\\set {} {}\n\\set {} {}", var(t, "role"), t.role, var(t, "database"), t.database);
    }
    for t in targets {
        let (role, db, pw) = (var(t, "role"), var(t, "database"), var(t, "password"));
        let _ = write!(
            s,
            "\n-- {service}: role {r}, database {d}\n\
             SELECT format('{create_role}', :'{role}', :'{pw}')\n  \
               WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'{role}') \\gexec\n\
             SELECT format('{restrict}', :'{role}') \\gexec\n\
             SELECT format('{password}', :'{role}', :'{pw}') \\gexec\n\
             SELECT format('{grant}', :'{role}')\n  \
               WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)\n    \
               AND NOT pg_has_role(current_user, :'{role}', 'MEMBER') \\gexec\n\
             SELECT format('{create_db}', :'{db}', :'{role}')\n  \
               WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'{db}') \\gexec\n\
             SELECT format('{owner}', :'{db}', :'{role}')\n  \
               WHERE (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'{db}') <> :'{role}' \\gexec\n\
             SELECT format('{revoke}', :'{db}') \\gexec\n",
            service = t.service,
            r = t.role,
            d = t.database,
            create_role = sql::CREATE_ROLE,
            restrict = sql::RESTRICT_ROLE,
            password = sql::SET_PASSWORD,
            grant = sql::GRANT_ROLE_TO_ADMIN,
            create_db = sql::CREATE_DATABASE,
            owner = sql::SET_DATABASE_OWNER,
            revoke = sql::REVOKE_DATABASE,
        );
    }
    for t in targets {
        let (role, db) = (var(t, "role"), var(t, "database"));
        let _ = write!(
            s,
            "\n-- {service}: inside database {d}\n\
             \\connect :\"{db}\"\n\
             SELECT format('{create}', :'{role}')\n  \
               WHERE NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'public') \\gexec\n\
             SELECT format('{owner}', :'{role}')\n  \
               WHERE (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public')\n    \
               NOT IN (:'{role}', 'pg_database_owner') \\gexec\n\
             {revoke};\n",
            service = t.service,
            d = t.database,
            create = sql::CREATE_PUBLIC_SCHEMA,
            owner = sql::SET_SCHEMA_OWNER,
            revoke = sql::REVOKE_SCHEMA_CREATE,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TargetSpec {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn targets_default_to_the_services_and_the_portal() -> anyhow::Result<()> {
        let all = targets(&[], DEFAULT_NAME_PREFIX)?;
        let names: Vec<(&str, &str, &str)> =
            all.iter().map(|t| (t.service.as_str(), t.database.as_str(), t.role.as_str())).collect();
        assert_eq!(
            names,
            [
                ("membership", "id77_membership", "id77_membership"),
                ("catalogue", "id77_catalogue", "id77_catalogue"),
                ("requests", "id77_requests", "id77_requests"),
                ("routing", "id77_routing", "id77_routing"),
                ("billing", "id77_billing", "id77_billing"),
                ("portal", "id77_portal", "id77_portal"),
            ]
        );
        let some = targets(&[spec("routing"), spec("audit-log=audit:audit_rw"), spec("billing=id77_invoices")], "x_")?;
        assert_eq!(
            some[0],
            Target { service: "routing".into(), database: "x_routing".into(), role: "x_routing".into() }
        );
        assert_eq!(some[1], Target { service: "audit-log".into(), database: "audit".into(), role: "audit_rw".into() });
        assert_eq!(
            some[2],
            Target { service: "billing".into(), database: "id77_invoices".into(), role: "x_billing".into() }
        );
        Ok(())
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "Routing", "a b", "routing=", "routing=db:", "routing=db:ro-le", "x=d b", "routing=a\"b"] {
            assert!(bad.parse::<TargetSpec>().is_err(), "{bad:?}");
        }
        assert!(targets(&[spec("routing")], "bad-").is_err(), "the prefix makes names too");
        assert_eq!(spec("x=Id77_X:r1").database.as_deref(), Some("Id77_X"), "names keep their case");
        assert!(targets(&[spec("routing"), spec("routing=other")], "").is_err(), "a service twice");
        assert!(targets(&[spec("a=db:r1"), spec("b=db:r2")], "").is_err(), "one database for two services");
        assert!(targets(&[spec("a=d1:r"), spec("b=d2:r")], "").is_err(), "one role for two services");
        assert!(!valid_identifier(&"a".repeat(64)));
    }

    #[test]
    fn verifiers_are_postgresqls() {
        // Made by PostgreSQL 15: CREATE ROLE ... PASSWORD 'pencil é' (password_encryption = scram-sha-256).
        let stored = "SCRAM-SHA-256$4096:oGkoct2XVVlkbxbgnRoT+g==$wWPoId67itCHZ+WoHWzVjkgQ5yQ51ymLhgUJiT+Ul2g=:\
                      DOeNvbc2sgFCVaPR9pbTsnira8IHkEnDDWfQNM2EVWA=";
        assert!(verifier_matches(stored, "pencil é"));
        assert!(!verifier_matches(stored, "pencil e"));
        assert!(!verifier_matches(stored, "pencil é\n"));
        assert!(!verifier_matches("md5f0b0a4c5f5e4e0b0", "pencil é"));
        assert!(!verifier_matches("SCRAM-SHA-256$0:AAAA$x:y", "pencil é"));
        let fresh = new_scram_verifier("pencil é").unwrap_or_default();
        assert!(fresh.starts_with("SCRAM-SHA-256$4096:") && verifier_matches(&fresh, "pencil é"));
        assert_ne!(fresh, new_scram_verifier("pencil é").unwrap_or_default(), "a new salt each time");
    }

    #[test]
    fn a_ca_file_needs_a_checking_sslmode() -> anyhow::Result<()> {
        use sqlx::postgres::PgSslMode;
        let dir = std::env::temp_dir().join(format!("id77-bootstrap-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")?;
        let url = "postgres://admin:secret@pg.example:5432/postgres";
        let full = admin_options(&format!("{url}?sslmode=verify-full"), Some(&ca))?;
        assert!(matches!(full.get_ssl_mode(), PgSslMode::VerifyFull));
        let upgraded = admin_options(&format!("{url}?sslmode=require"), Some(&ca))?;
        assert!(matches!(upgraded.get_ssl_mode(), PgSslMode::VerifyCa));
        let error = admin_options(url, Some(&ca)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("add sslmode=verify-full"), "{error}");
        let error = admin_options(url, Some(&dir.join("none.crt"))).err().map(|e| format!("{e:#}"));
        assert!(error.is_some_and(|e| e.starts_with("reading the PostgreSQL CA file")));
        std::fs::write(&ca, "not a certificate")?;
        assert!(admin_options(&format!("{url}?sslmode=verify-full"), Some(&ca)).is_err());
        let error = admin_options("postgres://admin:secret@pg:port/postgres", None).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.starts_with("the administrator's database URL is not valid"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_documented_sql_is_the_printed_sql() -> anyhow::Result<()> {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bootstrap.md"))?;
        let printed = print_sql(&targets(&[spec("membership")], DEFAULT_NAME_PREFIX)?);
        assert!(
            doc.contains(&format!("```sql\n{printed}```")),
            "docs/bootstrap.md: paste the output of `id77-admin bootstrap-db --print-sql --service membership`"
        );
        Ok(())
    }

    #[test]
    fn the_report_says_what_changed() {
        let target = Target { service: "routing".into(), database: "id77_routing".into(), role: "id77_routing".into() };
        let outcomes = [
            Outcome { target: target.clone(), changes: vec!["role id77_routing: password changed".into()] },
            Outcome { target: Target { service: "billing".into(), ..target }, changes: vec![] },
        ];
        assert_eq!(
            report(&outcomes),
            "routing: role id77_routing: password changed\nbilling: role id77_routing and database id77_routing: \
             nothing to change\nbootstrap-db: 2 service(s), 1 change(s)\n"
        );
    }

    #[test]
    fn the_printed_sql_quotes_through_the_server() -> anyhow::Result<()> {
        let script = print_sql(&targets(&[spec("routing"), spec("audit-log=audit:audit_rw")], DEFAULT_NAME_PREFIX)?);
        assert!(script.contains("\\set routing_role id77_routing\n\\set routing_database id77_routing\n"), "{script}");
        assert!(script.contains("\\set audit_log_role audit_rw\n"), "{script}");
        assert!(script.contains(&format!(
            "SELECT format('{}', :'routing_role', :'routing_password')\n  WHERE NOT EXISTS",
            sql::CREATE_ROLE
        )));
        assert!(script.contains("SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'routing_database') \\gexec"));
        assert!(script.contains("\\connect :\"audit_log_database\"\n"));
        assert!(script.contains("\\if :{?routing_password}\n"));
        for template in [
            sql::CREATE_ROLE,
            sql::RESTRICT_ROLE,
            sql::SET_PASSWORD,
            sql::GRANT_ROLE_TO_ADMIN,
            sql::CREATE_DATABASE,
            sql::SET_DATABASE_OWNER,
            sql::REVOKE_DATABASE,
            sql::CREATE_PUBLIC_SCHEMA,
            sql::SET_SCHEMA_OWNER,
        ] {
            assert!(!template.contains('\''), "{template} is put between quotes in the script");
        }
        // Names appear only in the \set lines and comments; the statements use the variables.
        for line in script.lines().filter(|l| !l.starts_with("\\set") && !l.starts_with("--")) {
            assert!(!line.contains("id77_routing") && !line.contains("audit_rw"), "{line}");
        }
        Ok(())
    }
}
