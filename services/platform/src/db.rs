//! One PostgreSQL database per service: created if missing, migrated at start-up (platform tables first,
//! then the service's own), under sqlx's advisory lock so replicas can start together.

use std::str::FromStr;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// Outbox and inbox tables, versions below 100.
static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The platform's migrations followed by the service's own (which must use versions >= 100).
pub fn combined_migrator(service: &Migrator) -> anyhow::Result<Migrator> {
    let mut all: Vec<_> = PLATFORM_MIGRATOR.iter().cloned().collect();
    for m in service.iter() {
        anyhow::ensure!(m.version >= 100, "service migration {} must use a version >= 100", m.version);
        all.push(m.clone());
    }
    Ok(Migrator::with_migrations(all))
}

/// Creates the database named in `url` if it does not exist yet (idempotent, safe under races).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url).with_context(|| format!("invalid database URL {url}"))?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be [A-Za-z0-9_]"
    );
    let mut admin = options
        .clone()
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL at {url}"))?;
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

/// Connects to the service's database, creating and migrating it first.
pub async fn connect(url: &str, service_migrations: &Migrator, max_connections: u32) -> anyhow::Result<PgPool> {
    ensure_database(url).await?;
    let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    combined_migrator(service_migrations)?.run(&pool).await.context("running migrations")?;
    Ok(pool)
}
