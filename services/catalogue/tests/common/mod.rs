//! What the catalogue's integration tests share: publishing another service's event on its (prefixed) stream,
//! and reading back what the catalogue published.

use id77_platform::{Namespace, streams};
use prost::{Message, Name};

/// Publishes an event of another service on its (prefixed) stream.
pub async fn publish<M: Message + Name>(
    js: &async_nats::jetstream::Context,
    ns: &Namespace,
    stream: streams::StreamDef,
    subject: &str,
    id: &str,
    event: &M,
) {
    let _ = id77_platform::nats::ensure_stream(js, ns, stream).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert("Id77-Event-Type", M::full_name().as_str());
    let ack = js
        .publish_with_headers(ns.subject(subject), headers, event.encode_to_vec().into())
        .await
        .unwrap_or_else(|e| panic!("publish {subject}: {e}"));
    ack.await.unwrap_or_else(|e| panic!("ack {subject}: {e}"));
}

/// The payloads the catalogue published on `subject` so far, in order.
pub async fn events<M: Message + Default>(
    js: &async_nats::jetstream::Context,
    ns: &Namespace,
    subject: &str,
) -> anyhow::Result<Vec<M>> {
    let mut stream = js.get_stream(ns.stream(streams::CATALOGUE.name)).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else { continue };
        if message.subject.as_str() == ns.subject(subject) {
            out.push(M::decode(message.payload)?);
        }
    }
    Ok(out)
}
