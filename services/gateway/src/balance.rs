//! Client-side balancing of the gateway's gRPC calls over every pod of a service.
//!
//! A gRPC channel to a Kubernetes Service holds one HTTP/2 connection, so kube-proxy sends all of its calls to
//! one pod. With `ID77_UPSTREAM_BALANCE=dns`, each upstream URL names a headless Service instead (the chart's
//! `<service>-headless`, whose DNS name resolves to the ready pods' addresses): [`follow`] resolves it every few
//! seconds and adds or removes one endpoint per address in a balanced channel (tower's power-of-two-choices), so
//! calls spread over the pods and follow scaling and rollouts.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tonic::transport::Endpoint;
use tonic::transport::channel::Change;

/// How often the upstreams' names are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// Resolves `host:port` with the system resolver.
pub async fn resolve_dns(host: String, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect())
}

/// Keeps the balanced channel fed by `changes` in step with what `resolve` answers for `host:port`, every
/// `every`, until the channel is dropped. An empty or failed answer keeps the last known endpoints (a DNS
/// hiccup must not empty the pool). `endpoint` turns an address into an endpoint (timeouts).
pub async fn follow<R, F, E>(
    name: &'static str,
    host: String,
    port: u16,
    changes: Sender<Change<SocketAddr, Endpoint>>,
    every: Duration,
    resolve: R,
    endpoint: E,
) where
    R: Fn(String, u16) -> F,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>>,
    E: Fn(SocketAddr) -> Option<Endpoint>,
{
    let mut current: HashSet<SocketAddr> = HashSet::new();
    loop {
        match resolve(host.clone(), port).await {
            Ok(addrs) if !addrs.is_empty() => {
                let next: HashSet<SocketAddr> = addrs.into_iter().collect();
                for addr in next.difference(&current) {
                    let Some(endpoint) = endpoint(*addr) else { continue };
                    tracing::info!(upstream = name, %addr, "upstream pod added");
                    if changes.send(Change::Insert(*addr, endpoint)).await.is_err() {
                        return;
                    }
                }
                for addr in current.difference(&next) {
                    tracing::info!(upstream = name, %addr, "upstream pod removed");
                    if changes.send(Change::Remove(*addr)).await.is_err() {
                        return;
                    }
                }
                current = next;
            }
            Ok(_) => tracing::warn!(upstream = name, %host, "no address for the upstream; keeping the last ones"),
            Err(error) => tracing::warn!(upstream = name, %host, %error, "resolving the upstream failed"),
        }
        tokio::select! {
            _ = changes.closed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
