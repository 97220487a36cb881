//! The provider's durable consumer on stream `REFERRALS`: the stream ensured when allowed (development), the
//! consumer used as it is when it exists, created when missing and allowed.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::PullConsumer;
use id77_proto::events::streams::REFERRALS;

use crate::config::consumer_config;
use crate::connect::Connection;

/// The provider's durable consumer: an existing one is used as it is; a missing one is created when
/// `create_consumer` allows it.
pub(crate) async fn pull_consumer(conn: &Connection) -> anyhow::Result<PullConsumer> {
    let stream_name = conn.ns.stream(REFERRALS.name);
    if conn.config.ensure_stream {
        match tokio::time::timeout(
            Duration::from_secs(10),
            id77_bus::nats::ensure_stream(&conn.js, &conn.ns, REFERRALS),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(
                stream = %stream_name,
                error = format!("{error:#}"),
                "cannot ensure the stream (not allowed?); using it as it is"
            ),
            Err(_) => tracing::warn!(stream = %stream_name, "ensuring the stream timed out; using it as it is"),
        }
    }
    let stream = conn.js.get_stream_no_info(&stream_name).await.with_context(|| format!("stream {stream_name}"))?;
    let durable = conn.config.durable();
    if conn.config.create_consumer {
        stream
            .get_or_create_consumer(&durable, consumer_config(&conn.ns, &conn.config.provider))
            .await
            .with_context(|| format!("consumer {durable} on stream {stream_name}"))
    } else {
        stream.get_consumer(&durable).await.map_err(|error| {
            anyhow::anyhow!(
                "consumer {durable} on stream {stream_name}: {error} (it must exist: the platform creates it, \
                 e.g. `id77-nats-config ensure-consumers`)"
            )
        })
    }
}
