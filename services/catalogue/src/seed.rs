//! The catalogue seed file: the demo catalogue shipped with the service, or the file `ID77_CATALOGUE_SEED`
//! names, read and validated before the service touches anything (a bad seed fails start-up clearly). Loading
//! it is [`crate::flow::seed::load`].

use std::path::Path;

use anyhow::Context;

use crate::domain::{self, Catalogue};

/// The demo catalogue shipped with the service (`seed/catalogue.json`).
pub const EMBEDDED_SEED: &str = include_str!("../seed/catalogue.json");

/// Largest seed file read.
const MAX_SEED_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and validates the seed: the file at `path`, or the embedded one.
pub async fn read(path: Option<&Path>) -> anyhow::Result<Catalogue> {
    let (json, origin) = match path {
        Some(path) => {
            let size = tokio::fs::metadata(path).await.with_context(|| format!("reading {}", path.display()))?.len();
            anyhow::ensure!(size <= MAX_SEED_BYTES, "{} is larger than {MAX_SEED_BYTES} bytes", path.display());
            let json = tokio::fs::read_to_string(path).await.with_context(|| format!("reading {}", path.display()))?;
            (json, path.display().to_string())
        }
        None => (EMBEDDED_SEED.to_owned(), "the embedded seed".to_owned()),
    };
    domain::parse_seed(&json).with_context(|| format!("loading the catalogue from {origin}"))
}
