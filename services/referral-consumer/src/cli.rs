//! The command line of `id77-referral-consumer`.

use std::path::PathBuf;

use clap::Parser;
use id77_bus::config::DEFAULT_NATS_URL;

use crate::config::Config;
use crate::decision::{Quote, Rule, RuleKind};
use crate::forward::{ForwardOptions, check_url};
use crate::tls::check_ca_file;

/// How the referrals are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Print each referral and notice as a JSON line; answer nothing.
    Print,
    /// POST each referral to `--url`, signed with the key in `--hmac-key-file`; answer from its reply.
    Forward,
    /// Answer by a fixed `--rule`.
    Rules,
}

/// What to run, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Print,
    Forward { url: String, hmac_key_file: PathBuf, options: ForwardOptions },
    Rules(Rule),
}

/// Receives the referrals routed to one provider and prints, forwards or answers them.
#[derive(Debug, Clone, Parser)]
#[command(name = "id77-referral-consumer", version)]
pub struct Cli {
    /// NATS server.
    #[arg(long, env = "ID77_NATS_URL", default_value = DEFAULT_NATS_URL)]
    pub nats_url: String,
    /// NATS credentials file (`.creds`) issued to the provider.
    #[arg(long, env = "ID77_NATS_CREDS", conflicts_with = "nkey")]
    pub creds: Option<PathBuf>,
    /// File holding the provider's NATS NKEY user seed (`provider-<code>.nk` from `id77-nats-config`).
    #[arg(long, env = "ID77_NATS_NKEY_FILE")]
    pub nkey: Option<PathBuf>,
    /// PEM file of the CA certificate(s) that signed the NATS server's, sent by the platform: from outside, connect
    /// with `--nats-url tls://<host>:<port>` and this file. With it, TLS is required.
    #[arg(long, env = "ID77_NATS_CA_FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// Start with TLS before the server's first word, for a NATS listener with `handshake_first` (the platform
    /// says so); implies TLS.
    #[arg(long, env = "ID77_NATS_TLS_FIRST")]
    pub nats_tls_first: bool,
    /// Subject and stream prefix of the deployment (empty in production).
    #[arg(long, env = "ID77_NATS_PREFIX", default_value = "")]
    pub prefix: String,
    /// The provider's code, e.g. `caue77`.
    #[arg(long)]
    pub provider: String,
    /// What to do with each referral (default: `rules` when `--rule` is given).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Forward mode: the organisation's endpoint, `https://...` (plain `http://` only to a loopback address
    /// unless `--allow-insecure-http`).
    #[arg(long)]
    pub url: Option<String>,
    /// Forward mode: PEM file of CA certificates trusted for the endpoint besides the system's roots.
    #[arg(long, env = "ID77_FORWARD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Forward mode: accept a plain `http://` URL to a host that is not a loopback address (referrals then cross
    /// the network unencrypted).
    #[arg(long, env = "ID77_FORWARD_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
    /// Forward mode: file holding the HMAC-SHA256 key shared with the endpoint (at least 16 bytes).
    #[arg(long)]
    pub hmac_key_file: Option<PathBuf>,
    /// Rules mode: how to answer each referral.
    #[arg(long, value_enum)]
    pub rule: Option<RuleKind>,
    /// The reason given with `--rule decline-all` (at most 1000 characters).
    #[arg(long)]
    pub decline_reason: Option<String>,
    /// The amount (euro cents, VAT excluded) stated when accepting an offer priced on quote, e.g. 245000 for
    /// 2 450,00 EUR. Without it, such a referral is left to an agent (portal or API), not accepted.
    #[arg(long)]
    pub quote_amount_cents: Option<i64>,
    /// Optional short label sent with `--quote-amount-cents` (at most 200 characters).
    #[arg(long, requires = "quote_amount_cents")]
    pub quote_note: Option<String>,
    /// Stop after answering this many referrals.
    #[arg(long)]
    pub max: Option<u64>,
    /// Never try to create the REFERRALS stream (production: the platform owns it).
    #[arg(long)]
    pub no_create_stream: bool,
    /// Never try to create the durable consumer `provider-<code>`: it must exist (production: the platform
    /// creates it, and the provider's credentials have no create permission).
    #[arg(long)]
    pub no_create_consumer: bool,
    /// Serve `GET /livez` (the process runs) and `GET /readyz` (its NATS connection is up) on this address, for
    /// Kubernetes' probes, e.g. `0.0.0.0:8081`.
    #[arg(long, env = "ID77_HEALTH_ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,
}

impl Cli {
    /// The validated configuration and rule (rules mode only).
    pub fn into_parts(self) -> anyhow::Result<(Config, Rule)> {
        match self.into_plan()? {
            (config, Plan::Rules(rule)) => Ok((config, rule)),
            _ => anyhow::bail!("this mode has no rule"),
        }
    }

    /// The validated configuration and what to run.
    pub fn into_plan(self) -> anyhow::Result<(Config, Plan)> {
        let mode = match (self.mode, self.rule) {
            (Some(mode), _) => mode,
            (None, Some(_)) => Mode::Rules,
            (None, None) => anyhow::bail!("give --mode print|forward|rules (rules needs --rule)"),
        };
        let plan = match mode {
            Mode::Rules => {
                let kind = self.rule.ok_or_else(|| anyhow::anyhow!("--mode rules needs --rule"))?;
                Plan::Rules(Rule::new(kind, self.decline_reason.as_deref()).map_err(anyhow::Error::msg)?)
            }
            Mode::Forward => {
                anyhow::ensure!(self.rule.is_none(), "--rule only goes with --mode rules");
                let url = self.url.clone().ok_or_else(|| anyhow::anyhow!("--mode forward needs --url"))?;
                let hmac_key_file = self
                    .hmac_key_file
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("--mode forward needs --hmac-key-file"))?;
                check_url(&url, self.allow_insecure_http)?;
                let options =
                    ForwardOptions { ca_file: self.ca_file.clone(), allow_insecure_http: self.allow_insecure_http };
                options.check()?;
                Plan::Forward { url, hmac_key_file, options }
            }
            Mode::Print => {
                anyhow::ensure!(self.rule.is_none(), "--rule only goes with --mode rules");
                Plan::Print
            }
        };
        let quote = match self.quote_amount_cents {
            None => None,
            Some(amount) => Some(
                Quote::new(amount, self.quote_note.as_deref().unwrap_or_default())
                    .map_err(|e| anyhow::anyhow!("--quote-amount-cents: {e}"))?,
            ),
        };
        let config = Config {
            nats_url: self.nats_url,
            credentials: self.creds,
            nkey_file: self.nkey,
            nats_ca_file: self.nats_ca_file,
            nats_tls_first: self.nats_tls_first,
            prefix: self.prefix,
            provider: self.provider,
            max: self.max,
            ensure_stream: !self.no_create_stream,
            create_consumer: !self.no_create_consumer,
            quote,
        };
        config.validate()?;
        if let Some(path) = &config.nats_ca_file {
            check_ca_file(path)?;
        }
        Ok((config, plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_chosen_and_checked() -> anyhow::Result<()> {
        let plan = |args: &[&str]| -> anyhow::Result<Plan> {
            let cli = Cli::try_parse_from(std::iter::once("c").chain(args.iter().copied()))?;
            Ok(cli.into_plan()?.1)
        };
        assert_eq!(plan(&["--provider", "p", "--mode", "print"])?, Plan::Print);
        let forward = plan(&["--provider", "p", "--mode", "forward", "--url", "https://h/x", "--hmac-key-file", "/k"])?;
        let options = ForwardOptions::default();
        assert_eq!(forward, Plan::Forward { url: "https://h/x".into(), hmac_key_file: "/k".into(), options });
        assert!(plan(&["--provider", "p", "--mode", "forward", "--url", "https://h/x"]).is_err());
        let forward = |url: &str, extra: &[&str]| {
            let args = ["--provider", "p", "--mode", "forward", "--url", url, "--hmac-key-file", "/k"];
            plan(&[&args[..], extra].concat())
        };
        let refused = forward("http://h/x", &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("--allow-insecure-http"), "{refused}");
        let options = ForwardOptions { ca_file: None, allow_insecure_http: true };
        assert_eq!(
            forward("http://h/x", &["--allow-insecure-http"])?,
            Plan::Forward { url: "http://h/x".into(), hmac_key_file: "/k".into(), options }
        );
        let refused = forward("https://h/x", &["--ca-file", "/nonexistent/ca.pem"]).err().map(|e| e.to_string());
        assert!(refused.unwrap_or_default().starts_with("--ca-file /nonexistent/ca.pem: "), "checked at start");
        assert!(forward("http://127.0.0.1:8080/x", &[]).is_ok());
        assert!(plan(&["--provider", "p", "--mode", "print", "--rule", "accept-all"]).is_err());
        assert!(plan(&["--provider", "p", "--mode", "rules"]).is_err());
        assert_eq!(
            plan(&["--provider", "p", "--mode", "rules", "--rule", "accept-all"])?,
            Plan::Rules(Rule::AcceptAll)
        );
        Ok(())
    }

    fn parse(args: &[&str]) -> anyhow::Result<(Config, Rule)> {
        let cli = Cli::try_parse_from(std::iter::once("id77-referral-consumer").chain(args.iter().copied()))?;
        cli.into_parts()
    }

    #[test]
    fn accept_all_with_a_limit() -> anyhow::Result<()> {
        let (config, rule) = parse(&["--provider", "caue77", "--rule", "accept-all", "--max", "2", "--prefix", "t1"])?;
        assert_eq!(rule, Rule::AcceptAll);
        assert_eq!((config.provider.as_str(), config.max, config.prefix.as_str()), ("caue77", Some(2), "t1"));
        assert!(config.ensure_stream);
        assert!(config.credentials.is_none());
        Ok(())
    }

    #[test]
    fn a_quote_amount_is_bounded_and_kept() -> anyhow::Result<()> {
        let (config, _) = parse(&[
            "--provider",
            "p",
            "--rule",
            "accept-all",
            "--quote-amount-cents",
            "245000",
            "--quote-note",
            "D-12",
        ])?;
        assert_eq!(config.quote, Some(Quote { amount_cents: 245_000, note: "D-12".into() }));
        assert_eq!(parse(&["--provider", "p", "--rule", "accept-all"])?.0.quote, None);
        for bad in ["0", "-5", "1000000001", "12,5"] {
            assert!(parse(&["--provider", "p", "--rule", "accept-all", "--quote-amount-cents", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--provider", "p", "--rule", "accept-all", "--quote-note", "x"]).is_err(), "note alone");
        Ok(())
    }

    #[test]
    fn decline_all_needs_a_reason() {
        let parsed = parse(&["--provider", "caue77", "--rule", "decline-all", "--decline-reason", "complet"]);
        assert_eq!(parsed.ok().map(|(_, rule)| rule), Some(Rule::DeclineAll { reason: "complet".into() }));
        assert!(parse(&["--provider", "caue77", "--rule", "decline-all"]).is_err());
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(parse(&["--rule", "accept-all"]).is_err(), "provider required");
        assert!(parse(&["--provider", "caue77"]).is_err(), "rule or mode required");
        assert!(parse(&["--provider", "caue77", "--mode", "forward"]).is_err(), "forward needs --url");
        assert!(parse(&["--provider", "caue77", "--rule", "accept-some"]).is_err());
        assert!(parse(&["--provider", "caue.77", "--rule", "accept-all"]).is_err());
        assert!(parse(&["--provider", "caue77", "--rule", "accept-all", "--max", "-1"]).is_err());
        let creds = parse(&["--provider", "p", "--rule", "accept-all", "--creds", "/x.creds", "--no-create-stream"]);
        let config = creds.ok().map(|(c, _)| (c.credentials, c.ensure_stream, c.create_consumer));
        assert_eq!(config, Some((Some(PathBuf::from("/x.creds")), false, true)));
        let nkey = parse(&["--provider", "p", "--rule", "accept-all", "--nkey", "/p.nk", "--no-create-consumer"]);
        let config = nkey.ok().map(|(c, _)| (c.nkey_file, c.credentials, c.ensure_stream, c.create_consumer));
        assert_eq!(config, Some((Some(PathBuf::from("/p.nk")), None, true, false)));
        assert!(parse(&["--provider", "p", "--rule", "accept-all", "--nkey", "/p.nk", "--creds", "/x.creds"]).is_err());
    }

    #[test]
    fn the_nats_ca_file_is_checked_at_start_and_requires_tls() -> anyhow::Result<()> {
        let (config, _) =
            parse(&["--provider", "p", "--rule", "accept-all", "--nats-url", "tls://nats.example.fr:4443"])?;
        assert!(config.requires_tls() && config.nats_ca_file.is_none() && !config.nats_tls_first);
        let (config, _) = parse(&["--provider", "p", "--rule", "accept-all"])?;
        assert!(!config.requires_tls(), "nats:// in development");
        let refused = parse(&["--provider", "p", "--rule", "accept-all", "--nats-ca-file", "/nonexistent/ca.pem"]);
        let refused = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(refused.starts_with("--nats-ca-file /nonexistent/ca.pem: "), "{refused}");
        let dir = std::env::temp_dir().join(format!("id77-cli-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let not_pem = dir.join("ca.txt");
        std::fs::write(&not_pem, "not a certificate")?;
        let refused = parse(&["--provider", "p", "--rule", "accept-all", "--nats-ca-file", &not_pem.to_string_lossy()]);
        assert!(refused.is_err());
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")?;
        let (config, _) = parse(&[
            "--provider",
            "p",
            "--rule",
            "accept-all",
            "--nats-ca-file",
            &pem.to_string_lossy(),
            "--nats-tls-first",
        ])?;
        assert!(config.requires_tls() && config.nats_tls_first && config.nats_ca_file == Some(pem));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
