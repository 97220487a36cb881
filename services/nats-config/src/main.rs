//! `id77-nats-config generate | ensure-consumers`: see the library's documentation (`generate --tls-*`: the
//! partners' TLS listener). The providers come from
//! `--provider` / `ID77_PROVIDERS` (e.g. the chart's `providers:`), the catalogue's database
//! (`--catalogue-database-url`) or a seed file (`--catalogue`); with none of them, from a source checkout's seed
//! file when run at its root (development), else there is none. Nothing is read from the source tree otherwise:
//! the platform image is enough.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use id77_nats_config::{DEV_CATALOGUE_SEED, Options, ProviderSources, Tls, ensure_consumers, generate};
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
        tls: TlsArgs,
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

/// TLS on the client listener: how partners reach NATS from outside (ADR 0014, "Partners over TLS").
#[derive(Debug, Args)]
struct TlsArgs {
    /// The server's certificate (PEM chain) for the names partners connect to: turns TLS on, and the listener
    /// becomes TLS only (unless --allow-non-tls).
    #[arg(long, requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// CA certificates that client certificates are checked against (with --tls-verify).
    #[arg(long, requires = "tls_cert_file")]
    tls_ca_file: Option<PathBuf>,
    /// Also require a client certificate signed by --tls-ca-file (mutual TLS, besides the NKEY).
    #[arg(long, requires = "tls_ca_file")]
    tls_verify: bool,
    /// TLS before the server's first word (handshake_first, nats-server 2.10.4+): clients must use TLS-first
    /// (the referral consumer's --nats-tls-first).
    #[arg(long, requires = "tls_cert_file")]
    tls_handshake_first: bool,
    /// Keep accepting clients that do not do TLS on the same port (allow_non_tls), e.g. in-cluster services
    /// without the CA during a transition. The server then no longer refuses clear text from anyone.
    #[arg(long, requires = "tls_cert_file", conflicts_with = "tls_handshake_first")]
    allow_non_tls: bool,
}

impl TlsArgs {
    fn tls(&self) -> Option<Tls> {
        let (cert_file, key_file) = (self.tls_cert_file.clone()?, self.tls_key_file.clone()?);
        Some(Tls {
            cert_file,
            key_file,
            ca_file: self.tls_ca_file.clone(),
            verify: self.tls_verify,
            handshake_first: self.tls_handshake_first,
            allow_non_tls: self.allow_non_tls,
        })
    }
}

#[derive(Debug, Args)]
struct ProviderArgs {
    /// A provider code (repeatable; in the environment, comma-separated), e.g. each key of the chart's
    /// `providers:`.
    #[arg(long = "provider", env = "ID77_PROVIDERS", value_delimiter = ',')]
    providers: Vec<String>,
    /// The catalogue's database (PostgreSQL URL): every provider of its `provider` table.
    #[arg(long, env = "ID77_CATALOGUE_DATABASE_URL", hide_env_values = true)]
    catalogue_database_url: Option<String>,
    /// A catalogue seed file whose `providers[].code` are providers. Without any source, the source checkout's
    /// services/catalogue/seed/catalogue.json is read when it exists (development).
    #[arg(long)]
    catalogue: Option<PathBuf>,
    /// Subject and stream prefix of the deployment (empty in production).
    #[arg(long, env = "ID77_NATS_PREFIX", default_value = "")]
    prefix: String,
}

impl ProviderArgs {
    async fn codes(&self) -> anyhow::Result<Vec<String>> {
        let sources = ProviderSources {
            codes: self.providers.clone(),
            catalogue_database_url: self.catalogue_database_url.clone(),
            catalogue_file: self.catalogue.clone(),
        };
        let resolved = sources.resolve(Path::new(DEV_CATALOGUE_SEED)).await?;
        if resolved.codes.is_empty() {
            tracing::warn!(
                "no provider (--provider, ID77_PROVIDERS, --catalogue-database-url or --catalogue): only the platform \
                 services get a user"
            );
        } else {
            tracing::info!(providers = ?resolved.codes, sources = ?resolved.sources, "providers");
        }
        Ok(resolved.codes)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_platform::telemetry::init("nats-config");
    match Cli::parse().command {
        Command::Generate { out, listen, store_dir, tls, providers } => {
            let mut options = Options::new(listen, &store_dir, &providers.prefix, providers.codes().await?)?;
            if let Some(tls) = tls.tls() {
                options = options.with_tls(tls)?;
            }
            let generated = generate(&out, &options)?;
            tracing::info!(
                dir = %generated.dir.display(),
                users = generated.users.len(),
                providers = options.providers.len(),
                new_seeds = ?generated.created,
                tls = match &options.tls {
                    None => "none",
                    Some(t) if t.allow_non_tls => "offered (clear text accepted too)",
                    Some(_) => "required",
                },
                "NATS configuration written"
            );
        }
        Command::EnsureConsumers { nats_url, nkey, providers } => {
            let codes = providers.codes().await?;
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
