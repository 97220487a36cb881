//! `id77-admin`: see the crate documentation and `services/admin/README.md`.

use std::process::ExitCode;

use clap::Parser;
use id77_admin::EXIT_UNREADABLE;
use id77_admin::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("id77-admin: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let code = runtime.block_on(run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr().lock()));
    ExitCode::from(code)
}
