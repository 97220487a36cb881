//! The command line: `id77-admin reconcile [--json]` and `id77-admin bootstrap-db [--print-sql]`, every option
//! also from the environment.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bootstrap::{self, DEFAULT_NAME_PREFIX, PasswordSource, TargetSpec};
use crate::reader::{
    Credentials, DEFAULT_BILLING_URL, DEFAULT_MEMBERSHIP_URL, DEFAULT_REQUESTS_URL, DEFAULT_ROUTING_URL, PAGE_SIZE,
    ReaderConfig,
};
use crate::{EXIT_UNREADABLE, Report};

#[derive(Debug, Parser)]
#[command(name = "id77-admin", version, about = "ID 77 operator tools")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks that requests, routing and billing tell the same story about every request (ADR 0013). Exit 0:
    /// consistent; 1: findings (still there after the settle period); 2: a service could not be read.
    Reconcile(ReconcileArgs),
    /// Creates each service's PostgreSQL role and database with least privilege, idempotently (docs/bootstrap.md):
    /// a LOGIN role that can do nothing else, owning a database only it may connect to. Exit 0: done (or nothing
    /// to do); 2: an error.
    BootstrapDb(BootstrapDbArgs),
}

#[derive(Debug, Args)]
pub struct BootstrapDbArgs {
    /// The administrator's database URL: a superuser, or a role with CREATEROLE and CREATEDB, e.g.
    /// postgres://admin@pg:5432/postgres?sslmode=verify-full (the password in it, or in PGPASSWORD). Not needed
    /// with --print-sql.
    #[arg(long, env = "ID77_BOOTSTRAP_ADMIN_URL", hide_env_values = true)]
    pub admin_url: Option<String>,
    /// A service, as SERVICE or SERVICE=DATABASE or SERVICE=DATABASE:ROLE (repeatable, or comma-separated in the
    /// environment). Default: membership, catalogue, requests, routing and billing.
    #[arg(long = "service", env = "ID77_BOOTSTRAP_SERVICES", value_delimiter = ',')]
    pub services: Vec<TargetSpec>,
    /// Prefix of the database and role names not given: <prefix><service> (dashes as underscores).
    #[arg(long, env = "ID77_BOOTSTRAP_NAME_PREFIX", default_value = DEFAULT_NAME_PREFIX)]
    pub name_prefix: String,
    /// A folder holding each service's password in <service>/password (the chart mounts the services' Secrets
    /// there). ID77_BOOTSTRAP_PASSWORD_<SERVICE> wins over the file.
    #[arg(long, env = "ID77_BOOTSTRAP_PASSWORD_DIR")]
    pub password_dir: Option<PathBuf>,
    /// The CA file the PostgreSQL server's certificate must chain to (needs sslmode=verify-full in the URL).
    #[arg(long, env = "ID77_DATABASE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the SQL (a psql script, passwords in psql variables) instead of running it; connects nowhere.
    #[arg(long)]
    pub print_sql: bool,
}

impl BootstrapDbArgs {
    /// Runs the command; returns the exit status.
    pub async fn run(&self, out: &mut impl Write, err: &mut impl Write) -> u8 {
        match self.execute(out).await {
            Ok(()) => 0,
            Err(error) => {
                let _ = writeln!(err, "id77-admin bootstrap-db: {error:#}");
                bootstrap::EXIT_FAILED
            }
        }
    }

    async fn execute(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let targets = bootstrap::targets(&self.services, &self.name_prefix)?;
        if self.print_sql {
            out.write_all(bootstrap::print_sql(&targets).as_bytes())?;
            return Ok(out.flush()?);
        }
        let admin_url = self
            .admin_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| anyhow::anyhow!("no administrator: give --admin-url (ID77_BOOTSTRAP_ADMIN_URL)"))?;
        let options =
            bootstrap::admin_options(admin_url, self.ca_file.as_deref().filter(|p| !p.as_os_str().is_empty()))?;
        let passwords = PasswordSource { dir: self.password_dir.clone() };
        // Every password first: nothing is changed when one is missing.
        let with_passwords = targets
            .into_iter()
            .map(|t| passwords.password(&t.service).map(|p| (t, p)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let outcomes = bootstrap::bootstrap(&options, &with_passwords).await?;
        out.write_all(bootstrap::report(&outcomes).as_bytes())?;
        Ok(out.flush()?)
    }
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Membership's gRPC address (sign-in).
    #[arg(long, env = "ID77_MEMBERSHIP_URL", default_value = DEFAULT_MEMBERSHIP_URL)]
    pub membership_url: String,
    /// Requests' gRPC address.
    #[arg(long, env = "ID77_REQUESTS_URL", default_value = DEFAULT_REQUESTS_URL)]
    pub requests_url: String,
    /// Routing's gRPC address.
    #[arg(long, env = "ID77_ROUTING_URL", default_value = DEFAULT_ROUTING_URL)]
    pub routing_url: String,
    /// Billing's gRPC address.
    #[arg(long, env = "ID77_BILLING_URL", default_value = DEFAULT_BILLING_URL)]
    pub billing_url: String,
    /// A coordinator's e-mail address (with --password).
    #[arg(long, env = "ID77_ADMIN_EMAIL")]
    pub email: Option<String>,
    /// The coordinator's password.
    #[arg(long, env = "ID77_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// A coordinator's access token, instead of --email and --password.
    #[arg(long, env = "ID77_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds to let the services converge before re-reading the requests found inconsistent.
    #[arg(long, env = "ID77_ADMIN_SETTLE_SECS", default_value_t = 10)]
    pub settle_secs: u64,
    /// Deadline of each gRPC call, in seconds.
    #[arg(
        long,
        env = "ID77_ADMIN_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout_secs: u64,
    /// Print the report as JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

impl ReconcileArgs {
    /// The reader's configuration; an error when no credentials are given.
    pub fn config(&self) -> anyhow::Result<ReaderConfig> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let credentials = match (given(&self.token), given(&self.email), &self.password) {
            (Some(token), _, _) => Credentials::Token(token),
            (None, Some(email), Some(password)) if !password.is_empty() => {
                Credentials::Password { email, password: password.clone() }
            }
            _ => anyhow::bail!(
                "no credentials: give --token (ID77_ADMIN_TOKEN), or --email and --password (ID77_ADMIN_EMAIL, \
                 ID77_ADMIN_PASSWORD) of a coordinator"
            ),
        };
        Ok(ReaderConfig {
            membership_url: self.membership_url.clone(),
            requests_url: self.requests_url.clone(),
            routing_url: self.routing_url.clone(),
            billing_url: self.billing_url.clone(),
            credentials,
            timeout: Duration::from_secs(self.timeout_secs),
            settle: Duration::from_secs(self.settle_secs),
            page_size: PAGE_SIZE,
        })
    }
}

/// Prints a reconciliation's outcome: the report on `out` (lines or JSON), an error on `err`. Returns the exit
/// status (0, 1, or 2 for an error).
pub fn print_outcome(outcome: &anyhow::Result<Report>, json: bool, out: &mut impl Write, err: &mut impl Write) -> u8 {
    match outcome {
        Ok(report) => {
            let text = if json { report.json() } else { report.text() };
            if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                return EXIT_UNREADABLE;
            }
            report.exit_code()
        }
        Err(error) => {
            let _ = writeln!(err, "id77-admin reconcile: cannot read the services: {error:#}");
            EXIT_UNREADABLE
        }
    }
}

/// Runs a command; returns the exit status.
pub async fn run(cli: Cli, out: &mut impl Write, err: &mut impl Write) -> u8 {
    match cli.command {
        Command::Reconcile(args) => {
            let config = match args.config() {
                Ok(config) => config,
                Err(error) => {
                    let _ = writeln!(err, "id77-admin reconcile: {error:#}");
                    return EXIT_UNREADABLE;
                }
            };
            let outcome = crate::reconcile(&config).await;
            print_outcome(&outcome, args.json, out, err)
        }
        Command::BootstrapDb(args) => args.run(out, err).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EXIT_CONSISTENT, EXIT_FINDINGS, Finding, FindingKind};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("id77-admin").chain(args.iter().copied()))
    }

    fn reconcile_args(args: &[&str]) -> ReconcileArgs {
        match parse(args).map(|cli| cli.command) {
            Ok(Command::Reconcile(args)) => args,
            Ok(other) => panic!("not reconcile: {other:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report { requests: 3, referrals: 2, quotes: 1, invoices: 1, rechecked: findings.len(), findings }
    }

    #[test]
    fn flags_make_the_reader_configuration() {
        let args = reconcile_args(&[
            "reconcile",
            "--requests-url=http://requests:7053",
            "--email= coordination@id77.demo ",
            "--password=Id77-Demo-Seine77!",
            "--settle-secs=0",
            "--timeout-secs=3",
            "--json",
        ]);
        assert!(args.json);
        let config = args.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.requests_url, "http://requests:7053");
        // Flags left out keep their defaults, unless the environment names them (as in the e2e harness).
        if std::env::var_os("ID77_ROUTING_URL").is_none() {
            assert_eq!(config.routing_url, DEFAULT_ROUTING_URL);
        }
        assert_eq!(
            config.credentials,
            Credentials::Password { email: "coordination@id77.demo".into(), password: "Id77-Demo-Seine77!".into() }
        );
        assert_eq!((config.settle, config.timeout, config.page_size), (Duration::ZERO, Duration::from_secs(3), 100));
        // A token wins over a password.
        let args = reconcile_args(&["reconcile", "--token=abc", "--email=a@b.c", "--password=x"]);
        assert_eq!(args.config().ok().map(|c| c.credentials), Some(Credentials::Token("abc".into())));
    }

    #[test]
    fn without_credentials_the_command_is_refused() {
        if ["ID77_ADMIN_TOKEN", "ID77_ADMIN_EMAIL", "ID77_ADMIN_PASSWORD"].iter().any(|v| std::env::var_os(v).is_some())
        {
            return;
        }
        let error = reconcile_args(&["reconcile", "--email=a@b.c"]).config().err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.starts_with("no credentials")));
        assert!(parse(&["reconcile", "--timeout-secs=0"]).is_err(), "a zero deadline is refused");
        assert!(parse(&["check"]).is_err(), "unknown command");
    }

    #[test]
    fn bootstrap_db_flags() {
        let args = match parse(&[
            "bootstrap-db",
            "--admin-url=postgres://admin@pg/postgres",
            "--service=routing",
            "--service=billing=id77_invoices:id77_billing",
            "--password-dir=/etc/id77/bootstrap/db",
            "--print-sql",
        ])
        .map(|cli| cli.command)
        {
            Ok(Command::BootstrapDb(args)) => args,
            other => panic!("{other:?}"),
        };
        assert!(args.print_sql);
        assert_eq!(args.admin_url.as_deref(), Some("postgres://admin@pg/postgres"));
        assert_eq!(args.password_dir, Some(PathBuf::from("/etc/id77/bootstrap/db")));
        assert_eq!(
            args.services,
            [
                TargetSpec { service: "routing".into(), database: None, role: None },
                TargetSpec {
                    service: "billing".into(),
                    database: Some("id77_invoices".into()),
                    role: Some("id77_billing".into())
                },
            ]
        );
        assert!(parse(&["bootstrap-db", "--service=Routing"]).is_err(), "names are checked when parsed");
    }

    #[test]
    fn exit_codes_and_output() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = print_outcome(&Ok(report(vec![])), false, &mut out, &mut err);
        assert_eq!(code, EXIT_CONSISTENT);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "reconcile: 3 requests, 2 referrals, 1 quotes, 1 invoices checked, 0 findings\n"
        );
        assert!(err.is_empty());

        let finding = Finding {
            request_id: Some("r1".into()),
            kind: FindingKind::InvoiceMismatch,
            detail: "invoice F-1 (i1) is issued; the request is cancelled: it allows no invoice, or one cancelled by a credit \
                     note [requests: cancelled; routing: no referral; billing: invoice F-1 (i1) issued for quote q1]"
                .into(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = print_outcome(&Ok(report(vec![finding.clone()])), false, &mut out, &mut err);
        assert_eq!(code, EXIT_FINDINGS);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!(
                "request r1: invoice_mismatch: {}\nreconcile: 3 requests, 2 referrals, 1 quotes, 1 invoices checked, \
                 1 findings\n",
                finding.detail
            )
        );

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = print_outcome(&Ok(report(vec![finding])), true, &mut out, &mut err);
        assert_eq!(code, EXIT_FINDINGS);
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(json["findings"][0]["kind"], "invoice_mismatch");
        assert_eq!(json["requests"], 3);

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = Err(anyhow::anyhow!("billing (http://127.0.0.1:7055): ListQuotes (page 1): Unavailable: down"));
        let code = print_outcome(&outcome, false, &mut out, &mut err);
        assert_eq!(code, EXIT_UNREADABLE);
        assert!(out.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&err),
            "id77-admin reconcile: cannot read the services: billing (http://127.0.0.1:7055): ListQuotes (page 1): \
             Unavailable: down\n"
        );
    }
}
