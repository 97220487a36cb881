//! `id77-admin bootstrap-db` against the local PostgreSQL (ID77_PG_URL, as a superuser), run as the chart's Job
//! runs it: the binary, configured by flags, the environment and password files. Every role and database has a
//! unique `id77t_bt<id>_` prefix and is dropped at the end (`make clean-test-dbs` drops leftover databases).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::str::FromStr;

use id77_admin::bootstrap::verifier_matches;
use id77_platform::config::{DEFAULT_PG_URL, env_or};
use id77_platform::testing::TEST_DB_PREFIX;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The names of one test run and what to drop afterwards.
struct Run {
    prefix: String,
    dir: PathBuf,
}

impl Run {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("{TEST_DB_PREFIX}bt{}_", &id[..10]);
        let dir = std::env::temp_dir().join(format!("id77-bootstrap-{}", &id[..10]));
        Self { prefix, dir }
    }

    fn name(&self, service: &str) -> String {
        format!("{}{service}", self.prefix)
    }

    /// Writes a service's password where the chart mounts it: <dir>/<service>/password.
    fn write_password(&self, service: &str, password: &str) {
        let dir = self.dir.join(service);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::write(dir.join("password"), password).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }

    fn bootstrap(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_id77-admin"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ID77_BOOTSTRAP_") || key == "ID77_DATABASE_CA_FILE" {
                command.env_remove(key);
            }
        }
        command
            .arg("bootstrap-db")
            .arg(format!("--name-prefix={}", self.prefix))
            .arg(format!("--password-dir={}", self.dir.display()))
            .args(args)
            .env("ID77_BOOTSTRAP_ADMIN_URL", admin_url())
            .envs(env.iter().copied());
        command.output().unwrap_or_else(|e| panic!("running id77-admin: {e}"))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let pattern = format!("{}%", self.prefix.replace('_', "\\_"));
        // Databases first (they are owned by the roles), then the roles.
        let cleanup = "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database \
                       WHERE datname LIKE :'pattern' \\gexec\n\
                       SELECT format('DROP ROLE IF EXISTS %I', rolname) FROM pg_roles WHERE rolname LIKE :'pattern' \
                       \\gexec\n";
        let _ = psql(&["-v", &format!("pattern={pattern}")], cleanup);
    }
}

fn admin_url() -> String {
    format!("{}/postgres", env_or("ID77_PG_URL", DEFAULT_PG_URL).trim_end_matches('/'))
}

fn options_as(role: &str, password: &str, database: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url())
        .unwrap_or_else(|e| panic!("ID77_PG_URL: {e}"))
        .username(role)
        .password(password)
        .database(database)
        .disable_statement_logging()
}

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url()).await.unwrap_or_else(|e| panic!("connecting as the administrator: {e}"))
}

/// psql (PSQL, else from PATH) on the administrator's URL with `script` on its standard input.
fn psql(args: &[&str], script: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(std::env::var("PSQL").unwrap_or_else(|_| "psql".into()))
        .arg(admin_url())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running psql (PostgreSQL's client, set PSQL to its path): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).unwrap_or_else(|e| panic!("writing to psql: {e}"));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("psql: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls; the database's owner, whether
/// PUBLIC has any privilege on it; the stored verifier.
async fn state(
    admin: &mut PgConnection,
    role: &str,
    database: &str,
) -> ((bool, bool, bool, bool, bool, bool), (String, bool), String) {
    let attributes = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles \
         WHERE rolname = $1",
    )
    .bind(role)
    .fetch_one(&mut *admin)
    .await
    .unwrap_or_else(|e| panic!("role {role}: {e}"));
    let database = sqlx::query_as(
        "SELECT pg_get_userbyid(datdba)::text, EXISTS (SELECT 1 FROM aclexplode(coalesce(datacl, \
         acldefault('d', datdba))) AS a WHERE a.grantee = 0) FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_one(&mut *admin)
    .await
    .unwrap_or_else(|e| panic!("database {database}: {e}"));
    let verifier: Option<String> = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role)
        .fetch_one(&mut *admin)
        .await
        .unwrap_or_else(|e| panic!("pg_authid: {e}"));
    (attributes, database, verifier.unwrap_or_default())
}

/// What a service role finds in its own database: the owner of schema public, and whether PUBLIC may create in it.
async fn schema_state(role: &str, password: &str, database: &str) -> (String, bool) {
    let mut conn = PgConnection::connect_with(&options_as(role, password, database))
        .await
        .unwrap_or_else(|e| panic!("{role} connecting to {database}: {e}"));
    let state = sqlx::query_as(
        "SELECT pg_get_userbyid(nspowner)::text, has_schema_privilege('public', 'public', 'CREATE') FROM pg_namespace \
         WHERE nspname = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("schema public of {database}: {e}"));
    conn.close().await.ok();
    state
}

const LEAST: (bool, bool, bool, bool, bool, bool) = (true, false, false, false, false, false);

#[tokio::test]
async fn each_role_owns_its_database_and_nothing_else() {
    let run = Run::new();
    let (alpha, beta) = (run.name("alpha"), run.name("beta"));
    let alpha_password = "alpha 'quoted' \"pass\" $$ é";
    let mut admin = admin().await;

    // First run: alpha's password from the environment, beta's from its file (as the chart mounts it).
    run.write_password("beta", "beta-first");
    let output =
        run.bootstrap(&["--service=alpha", "--service=beta"], &[("ID77_BOOTSTRAP_PASSWORD_ALPHA", alpha_password)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    for line in [
        format!("alpha: role {alpha} created (LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS)"),
        format!("alpha: database {alpha} created, owned by {alpha}"),
        format!("alpha: database {alpha}: PUBLIC's privileges revoked (only {alpha} may connect)"),
        format!("beta: role {beta} created (LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS)"),
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("alpha 'quoted'") && !stdout.contains("beta-first"), "no password printed: {stdout}");
    let (attributes, database, alpha_verifier) = state(&mut admin, &alpha, &alpha).await;
    assert_eq!(attributes, LEAST, "login, and nothing else");
    assert_eq!(database, (alpha.clone(), false), "alpha owns its database, PUBLIC has no privilege on it");
    assert!(verifier_matches(&alpha_verifier, alpha_password), "a SCRAM verifier of the password: {alpha_verifier}");
    let (_, _, beta_verifier) = state(&mut admin, &beta, &beta).await;
    assert!(verifier_matches(&beta_verifier, "beta-first"));
    let (schema_owner, public_create) = schema_state(&alpha, alpha_password, &alpha).await;
    assert!(schema_owner == alpha || schema_owner == "pg_database_owner", "schema public owned by {schema_owner}");
    assert!(!public_create, "PUBLIC may not create in schema public");

    // Role A works in its own database: tables, and the trusted extensions catalogue's migrations create.
    let mut a = PgConnection::connect_with(&options_as(&alpha, alpha_password, &alpha))
        .await
        .unwrap_or_else(|e| panic!("alpha connecting to its database: {e}"));
    for statement in [
        "CREATE TABLE t (id bigint PRIMARY KEY, label text NOT NULL)",
        "INSERT INTO t VALUES (1, 'one')",
        "CREATE EXTENSION IF NOT EXISTS unaccent",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE EXTENSION IF NOT EXISTS btree_gist",
    ] {
        sqlx::raw_sql(statement).execute(&mut a).await.unwrap_or_else(|e| panic!("alpha: {statement}: {e}"));
    }
    let (superuser, createdb): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut a)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(!superuser && !createdb);
    // ... but cannot create a database, nor a role.
    let created = sqlx::raw_sql("CREATE DATABASE id77t_bt_never").execute(&mut a).await;
    let error = created.err().unwrap_or_else(|| panic!("alpha created a database"));
    assert_eq!(sqlstate(&error).as_deref(), Some("42501"), "{error}");
    assert!(error.to_string().contains("permission denied to create database"), "{error}");
    let error = sqlx::raw_sql("CREATE ROLE id77t_bt_never").execute(&mut a).await.err();
    assert_eq!(error.as_ref().and_then(sqlstate).as_deref(), Some("42501"), "{error:?}");
    a.close().await.ok();

    // Role A cannot connect to B's database.
    let error = PgConnection::connect_with(&options_as(&alpha, alpha_password, &beta))
        .await
        .err()
        .unwrap_or_else(|| panic!("alpha connected to beta's database"));
    assert_eq!(sqlstate(&error).as_deref(), Some("42501"), "{error}");
    assert!(error.to_string().contains(&format!("permission denied for database \"{beta}\"")), "{error}");

    // What the services do at start (services/platform/src/db.rs): "create the database if missing" passes when
    // it exists, although the role may not create databases; a missing one is an error naming the privilege.
    let alpha_url = database_url(&alpha, alpha_password, &alpha);
    let ensured = id77_platform::db::ensure_database(&alpha_url).await;
    assert!(ensured.is_ok(), "ensure_database on an existing database: {ensured:?}");
    let missing =
        id77_platform::db::ensure_database(&database_url(&alpha, alpha_password, &format!("{alpha}_missing"))).await;
    let missing = format!("{:#}", missing.err().unwrap_or_else(|| panic!("alpha created a database")));
    assert!(missing.contains("permission denied to create database"), "{missing}");

    // A second run changes nothing, and says so.
    let output =
        run.bootstrap(&["--service=alpha", "--service=beta"], &[("ID77_BOOTSTRAP_PASSWORD_ALPHA", alpha_password)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout,
        format!(
            "alpha: role {alpha} and database {alpha}: nothing to change\nbeta: role {beta} and database {beta}: \
             nothing to change\nbootstrap-db: 2 service(s), 0 change(s)\n"
        )
    );
    assert_eq!(state(&mut admin, &alpha, &alpha).await.2, alpha_verifier, "the verifier was not even re-salted");

    // A changed password is applied; what drifted is put back (privileges granted by hand).
    run.write_password("beta", "beta-second");
    for statement in
        [format!("ALTER ROLE \"{alpha}\" CREATEDB"), format!("GRANT CONNECT ON DATABASE \"{alpha}\" TO PUBLIC")]
    {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut admin).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let output =
        run.bootstrap(&["--service=alpha", "--service=beta"], &[("ID77_BOOTSTRAP_PASSWORD_ALPHA", alpha_password)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout,
        format!(
            "alpha: role {alpha} restricted to LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS\n\
             alpha: database {alpha}: PUBLIC's privileges revoked (only {alpha} may connect)\n\
             beta: role {beta}: password changed\nbootstrap-db: 2 service(s), 3 change(s)\n"
        )
    );
    let (attributes, database, _) = state(&mut admin, &alpha, &alpha).await;
    assert_eq!((attributes, database), (LEAST, (alpha.clone(), false)));
    let (_, _, beta_verifier) = state(&mut admin, &beta, &beta).await;
    assert!(verifier_matches(&beta_verifier, "beta-second") && !verifier_matches(&beta_verifier, "beta-first"));

    // A missing password stops the run before anything changes.
    let output =
        run.bootstrap(&["--service=alpha", "--service=gamma"], &[("ID77_BOOTSTRAP_PASSWORD_ALPHA", alpha_password)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("id77-admin bootstrap-db: reading the password of gamma from "), "{stderr}");
    let gamma: Option<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = $1")
        .bind(run.name("gamma"))
        .fetch_optional(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gamma, None);
    admin.close().await.ok();
}

/// A database URL as the services get one (ID77_DATABASE_URL), here with the password in it (percent-encoded).
fn database_url(role: &str, password: &str, database: &str) -> String {
    let options = options_as(role, password, database);
    let encoded: String = password
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("postgres://{role}:{encoded}@{}:{}/{database}", options.get_host(), options.get_port())
}

#[tokio::test]
async fn the_printed_sql_does_the_same_with_psql() {
    let run = Run::new();
    let delta = run.name("delta");
    let output = run.bootstrap(&["--print-sql", "--service=delta"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let script = text(&output.stdout);
    let password = "delta 'pw' with quotes";

    // Without the password variable: stopped before anything is created.
    let refused = psql(&[], &script);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        text(&refused.stderr).contains("no password for delta: psql -v delta_password=..."),
        "{}",
        text(&refused.stderr)
    );

    // Twice: the second run finds everything in place.
    for round in 1..=2 {
        let ran = psql(&["-v", &format!("delta_password={password}")], &script);
        assert_eq!(ran.status.code(), Some(0), "round {round}: {}{}", text(&ran.stdout), text(&ran.stderr));
    }
    let mut admin = admin().await;
    let (attributes, database, verifier) = state(&mut admin, &delta, &delta).await;
    assert_eq!(attributes, LEAST);
    assert_eq!(database, (delta.clone(), false));
    assert!(verifier_matches(&verifier, password), "{verifier}");
    let (owner, public_create) = schema_state(&delta, password, &delta).await;
    assert!(owner == delta || owner == "pg_database_owner", "{owner}");
    assert!(!public_create);
    // The subcommand then agrees that nothing is left to do.
    let output = run.bootstrap(&["--service=delta"], &[("ID77_BOOTSTRAP_PASSWORD_DELTA", password)]);
    assert_eq!(
        text(&output.stdout),
        format!(
            "delta: role {delta} and database {delta}: nothing to change\nbootstrap-db: 1 service(s), 0 change(s)\n"
        ),
        "{}",
        text(&output.stderr)
    );
    admin.close().await.ok();
}

#[tokio::test]
async fn an_administrator_that_is_not_a_superuser_will_do() {
    let run = Run::new();
    let (admin_role, epsilon) = (run.name("admin"), run.name("epsilon"));
    let mut admin = admin().await;
    let create: String = sqlx::query_scalar("SELECT format('CREATE ROLE %I LOGIN CREATEROLE CREATEDB', $1::text)")
        .bind(&admin_role)
        .fetch_one(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.unwrap_or_else(|e| panic!("{e}"));
    let options = options_as(&admin_role, "", "postgres");
    let url = format!("postgres://{admin_role}@{}:{}/postgres", options.get_host(), options.get_port());
    for round in 1..=2 {
        let output = run.bootstrap(
            &["--service=epsilon"],
            &[("ID77_BOOTSTRAP_ADMIN_URL", &url), ("ID77_BOOTSTRAP_PASSWORD_EPSILON", "e-pw")],
        );
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "round {round}: {stdout}{}", text(&output.stderr));
        // It cannot read pg_authid: the password is set again each time, and the report says why.
        assert!(
            stdout.contains(&format!(
                "epsilon: role {epsilon}: password set (the administrator cannot read pg_authid to compare)"
            )) || round == 1,
            "{stdout}"
        );
        if round == 1 {
            assert!(stdout.contains(&format!("epsilon: role {epsilon} granted to {admin_role}")), "{stdout}");
            assert!(stdout.contains(&format!("epsilon: database {epsilon} created, owned by {epsilon}")), "{stdout}");
        }
    }
    let (attributes, database, verifier) = state(&mut admin, &epsilon, &epsilon).await;
    assert_eq!((attributes, database), (LEAST, (epsilon.clone(), false)));
    assert!(verifier_matches(&verifier, "e-pw"));
    admin.close().await.ok();
}
