//! Where the provider codes come from: codes given, the catalogue's database or a catalogue seed file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::options::validate_providers;

/// The provider codes of a catalogue seed file (`{"providers": [{"code": ...}, ...], ...}`).
pub fn providers_from_catalogue(path: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Seed {
        providers: Vec<Provider>,
    }
    #[derive(Deserialize)]
    struct Provider {
        code: String,
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let seed: Seed = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    validate_providers(seed.providers.into_iter().map(|p| p.code)).with_context(|| format!("in {}", path.display()))
}

/// The catalogue seed file of a source checkout, relative to its root: the providers' development default
/// (the platform image does not ship it).
pub const DEV_CATALOGUE_SEED: &str = "services/catalogue/seed/catalogue.json";

/// The provider codes of the catalogue's database (its `provider` table), e.g. the catalogue service's
/// `ID77_DATABASE_URL`; a role that may read that table is enough.
pub async fn providers_from_database(url: &str) -> anyhow::Result<Vec<String>> {
    use sqlx::{ConnectOptions, Connection};
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
        .context("the catalogue's database URL is not valid")?
        .disable_statement_logging();
    let what = format!(
        "the catalogue's database {} at {}:{}",
        options.get_database().unwrap_or_default(),
        options.get_host(),
        options.get_port()
    );
    let connect = sqlx::PgConnection::connect_with(&options);
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(30), connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {what}: no answer within 30s"))?
        .with_context(|| format!("connecting to {what}"))?;
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM provider ORDER BY code")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("reading the providers of {what}"))?;
    conn.close().await.ok();
    validate_providers(codes).with_context(|| format!("in {what}"))
}

/// Where the provider codes come from; every source given adds its codes.
#[derive(Debug, Clone, Default)]
pub struct ProviderSources {
    /// Codes given as such (`--provider`, `ID77_PROVIDERS`: e.g. the keys of the chart's `providers:`).
    pub codes: Vec<String>,
    /// The catalogue's database (`--catalogue-database-url`).
    pub catalogue_database_url: Option<String>,
    /// A catalogue seed file (`--catalogue`).
    pub catalogue_file: Option<PathBuf>,
}

/// The providers found, and where from (for the log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedProviders {
    pub codes: Vec<String>,
    pub sources: Vec<String>,
}

impl ProviderSources {
    /// Whether no source is given.
    pub fn is_empty(&self) -> bool {
        self.codes.iter().all(|c| c.trim().is_empty())
            && self.catalogue_database_url.as_deref().is_none_or(|u| u.trim().is_empty())
            && self.catalogue_file.is_none()
    }

    /// The codes of every source given, validated, deduplicated and sorted. With none given, the development
    /// default: `dev_seed` (a source checkout's [`DEV_CATALOGUE_SEED`]) when that file exists; else no provider.
    pub async fn resolve(&self, dev_seed: &Path) -> anyhow::Result<ResolvedProviders> {
        let mut codes = Vec::new();
        let mut sources = Vec::new();
        let given: Vec<String> = self.codes.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
        if !given.is_empty() {
            sources.push(format!("{} given", given.iter().collect::<BTreeSet<_>>().len()));
            codes.extend(given);
        }
        if let Some(url) = self.catalogue_database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            let found = providers_from_database(url).await?;
            sources.push(format!("{} from the catalogue's database", found.len()));
            codes.extend(found);
        }
        if let Some(path) = &self.catalogue_file {
            let found = providers_from_catalogue(path)?;
            sources.push(format!("{} from {}", found.len(), path.display()));
            codes.extend(found);
        }
        if self.is_empty() && dev_seed.is_file() {
            let found = providers_from_catalogue(dev_seed)?;
            sources.push(format!("{} from {} (development default: no source given)", found.len(), dev_seed.display()));
            codes.extend(found);
        }
        Ok(ResolvedProviders { codes: validate_providers(codes)?, sources })
    }
}
