//! `id77-nats-config generate | ensure-consumers`: see the library's documentation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use id77_nats_config::{Options, ensure_consumers, generate, providers_from_catalogue, validate_providers};
use id77_platform::Namespace;
use id77_platform::config::DEFAULT_NATS_URL;

/// Generates the NATS server configuration of the platform and creates the providers' durable consumers.
#[derive(Debug, Parser)]
#[command(name = "id77-nats-config", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes nats-server.conf, one NKEY seed per user (<user>.nk, mode 0600, kept across runs) and users.json.
    Generate {
        /// Output folder (created, mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// Address the server listens on.
        #[arg(long, default_value = "127.0.0.1:4222")]
        listen: SocketAddr,
        /// JetStream store folder.
        #[arg(long)]
        store_dir: PathBuf,
        #[command(flatten)]
        providers: ProviderArgs,
    },
    /// Creates the REFERRALS stream if missing and each provider's durable consumer `provider-<code>`.
    EnsureConsumers {
        /// NATS server.
        #[arg(long, env = "ID77_NATS_URL", default_value = DEFAULT_NATS_URL)]
        nats_url: String,
        /// NKEY seed file of a platform service user (e.g. routing.nk).
        #[arg(long, env = "ID77_NATS_NKEY_FILE")]
        nkey: Option<PathBuf>,
        #[command(flatten)]
        providers: ProviderArgs,
    },
}

#[derive(Debug, Args)]
struct ProviderArgs {
    /// Catalogue seed file whose `providers[].code` are the providers.
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// A provider code (repeatable; added to the catalogue's).
    #[arg(long = "provider")]
    providers: Vec<String>,
    /// Subject and stream prefix of the deployment (empty in production).
    #[arg(long, env = "ID77_NATS_PREFIX", default_value = "")]
    prefix: String,
}

impl ProviderArgs {
    fn codes(&self) -> anyhow::Result<Vec<String>> {
        let mut codes = self.providers.clone();
        if let Some(path) = &self.catalogue {
            codes.extend(providers_from_catalogue(path)?);
        }
        let codes = validate_providers(codes)?;
        if codes.is_empty() {
            tracing::warn!("no provider given (--catalogue or --provider): only the platform services get a user");
        }
        Ok(codes)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_platform::telemetry::init("nats-config");
    match Cli::parse().command {
        Command::Generate { out, listen, store_dir, providers } => {
            let options = Options::new(listen, &store_dir, &providers.prefix, providers.codes()?)?;
            let generated = generate(&out, &options)?;
            tracing::info!(
                dir = %generated.dir.display(),
                users = generated.users.len(),
                providers = options.providers.len(),
                new_seeds = ?generated.created,
                "NATS configuration written"
            );
        }
        Command::EnsureConsumers { nats_url, nkey, providers } => {
            let codes = providers.codes()?;
            let ns = Namespace::new(providers.prefix.clone());
            let (client, js) =
                id77_platform::nats::connect_with(&nats_url, "id77-nats-config", nkey.as_deref()).await?;
            let ensured = ensure_consumers(&js, &ns, &codes).await?;
            tracing::info!(stream = %ensured.stream, consumers = ?ensured.durables, "provider consumers ready");
            client.flush().await?;
        }
    }
    Ok(())
}
