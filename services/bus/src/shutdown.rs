//! Graceful shutdown: one token cancelled on SIGTERM or Ctrl-C, handed to every task.
//!
//! The stop is bounded whatever the dependencies do. Each step of a service's stop has its own time limit
//! (`id77_platform::ServiceContext::serve`); on top of that, a process still running [`HARD_DEADLINE`] after the
//! first signal exits anyway (from a thread of its own, so a wedged runtime or a blocking task cannot hold it), and
//! a second SIGTERM or Ctrl-C exits at once. Before this, the first signal was the only one heard: tokio keeps the
//! signal handlers installed, so a process stuck in its stop (NATS gone: waiting for a flush that only a
//! reconnection answers) ignored every further SIGTERM and only SIGKILL stopped it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long after the first signal a process may take to stop before it exits anyway: under Kubernetes' default
/// 30 s grace period, and under the 10 s the platform promises.
pub const HARD_DEADLINE: Duration = Duration::from_millis(9_500);

/// Returns a token that is cancelled when the process receives SIGTERM or SIGINT. After that first signal, a
/// second one exits the process at once (status 128 + signal), and so does [`HARD_DEADLINE`] (status 1).
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut signals = Signals::new();
        let first = signals.recv().await;
        tracing::info!(signal = first.name(), "shutdown signal received");
        trigger.cancel();
        exit_after(HARD_DEADLINE);
        let second = signals.recv().await;
        tracing::warn!(signal = second.name(), "second signal: exiting now");
        std::process::exit(second.exit_status());
    });
    token
}

/// Exits the process with status 1 if it is still running after `deadline`. A plain thread: it fires even if
/// every runtime worker is blocked, or if the runtime waits for a blocking task on its way out.
pub fn exit_after(deadline: Duration) {
    let spawned = std::thread::Builder::new().name("id77-shutdown-deadline".into()).spawn(move || {
        std::thread::sleep(deadline);
        tracing::error!(?deadline, "the process did not stop in time after the shutdown signal; exiting now");
        eprintln!("id77: the process did not stop within {deadline:?} of the shutdown signal; exiting now");
        std::process::exit(1);
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no shutdown deadline thread");
    }
}

#[derive(Debug, Clone, Copy)]
enum Received {
    Terminate,
    Interrupt,
}

impl Received {
    fn name(self) -> &'static str {
        match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        }
    }

    /// The shell's convention for a process ended by a signal.
    fn exit_status(self) -> i32 {
        match self {
            Self::Terminate => 128 + 15,
            Self::Interrupt => 128 + 2,
        }
    }
}

/// SIGTERM and SIGINT, listened to once for the life of the process (no gap between the first and the second).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only"))
                .ok();
            let int = signal(SignalKind::interrupt())
                .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGINT"))
                .ok();
            Self { term, int }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn recv(&mut self) -> Received {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                if let Some(signal) = signal
                    && signal.recv().await.is_some()
                {
                    return;
                }
                std::future::pending().await
            }
            tokio::select! {
                () = next(&mut self.term) => Received::Terminate,
                () = next(&mut self.int) => Received::Interrupt,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Received::Interrupt
        }
    }
}
