//! The providers' durable consumers, created beforehand by a service user (a provider's user may not create them).

use anyhow::Context;
use async_nats::jetstream;
use id77_platform::Namespace;
use id77_proto::events::streams::REFERRALS;
use id77_referral_consumer::{consumer_config, durable_name};

use crate::options::validate_providers;

/// What [`ensure_consumers`] found or created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsuredConsumers {
    /// The `REFERRALS` stream's name (with the deployment's prefix).
    pub stream: String,
    /// Durable names, one per provider, in provider order.
    pub durables: Vec<String>,
}

/// Creates the `REFERRALS` stream if it is missing (the platform's definition) and each provider's durable pull
/// consumer `provider-<code>` (filter `id77.referrals.<code>.offered`, explicit ack). An existing consumer is
/// kept, or updated to that definition where the server allows it. Run it as a platform service user.
pub async fn ensure_consumers(
    js: &jetstream::Context,
    ns: &Namespace,
    providers: &[String],
) -> anyhow::Result<EnsuredConsumers> {
    let providers = validate_providers(providers.iter().cloned())?;
    let stream = id77_platform::nats::ensure_stream(js, ns, REFERRALS).await?;
    let stream_name = ns.stream(REFERRALS.name);
    let mut durables = Vec::with_capacity(providers.len());
    for code in &providers {
        let config = consumer_config(ns, code);
        let durable = durable_name(code);
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(config.clone())
            .await
            .with_context(|| format!("creating consumer {durable} on stream {stream_name}"))?;
        let info = consumer.cached_info();
        anyhow::ensure!(
            info.config.filter_subject == config.filter_subject
                && info.config.ack_policy == jetstream::consumer::AckPolicy::Explicit,
            "consumer {durable} on stream {stream_name} exists with another definition (filter {:?}); delete it \
             and run this again",
            info.config.filter_subject
        );
        tracing::info!(stream = %stream_name, durable = %durable, filter = %config.filter_subject, "consumer ready");
        durables.push(durable);
    }
    Ok(EnsuredConsumers { stream: stream_name, durables })
}
