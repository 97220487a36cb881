//! What a provider publishes on its reply subject (`id77_proto::events::provider::reply`): its answers, the
//! completion of its work and its progress reports, each with a message id only it can compute
//! ([`crate::MessageIds`]), and only once JetStream has acknowledged it.

use async_nats::HeaderMap;
use async_nats::jetstream::{message::PublishMessage, publish::PublishAck};
use id77_proto::events::provider::reply;
use id77_proto::routing::v1::{ReferralProgress, ReferralReply, ReplyDecision};
use prost::{Message, Name};

use crate::connect::Connection;
use crate::explain::explain_nats_error;

/// Publishes a message on the provider's reply subject with `Nats-Msg-Id: <id>` and waits for JetStream's ack.
async fn publish<M: Message + Name>(conn: &Connection, message: &M, id: String) -> anyhow::Result<PublishAck> {
    let mut headers = HeaderMap::new();
    headers.insert(id77_proto::events::EVENT_TYPE_HEADER, M::full_name().as_str());
    headers.insert("Content-Type", "application/protobuf");
    // The reply continues the referral's trace (routing's consumer picks it up).
    if let Some(traceparent) = id77_bus::telemetry::current_traceparent() {
        headers.insert(id77_bus::telemetry::TRACEPARENT, traceparent.as_str());
    }
    let publish = PublishMessage::build().payload(message.encode_to_vec().into()).headers(headers).message_id(id);
    let subject = conn.ns.subject(&reply(&conn.config.provider));
    let ack = conn
        .js
        .send_publish(subject.clone(), publish)
        .await
        .map_err(|e| explain_nats_error(&conn.config, &format!("publishing on {subject}"), &e.to_string()))?;
    ack.await.map_err(|e| explain_nats_error(&conn.config, &format!("ack of the reply on {subject}"), &e.to_string()))
}

/// Publishes an answer with `Nats-Msg-Id:` [`crate::MessageIds::reply`] and waits for JetStream's ack.
pub(crate) async fn answer(conn: &Connection, answer: &ReferralReply) -> anyhow::Result<PublishAck> {
    publish(conn, answer, conn.ids.reply(&answer.referral_id)).await
}

/// Reports progress on an accepted referral (`sequence` increasing per referral; a repeated one is a duplicate).
/// `percent` 0..=100, 0 when not given.
pub(crate) async fn progress(
    conn: &Connection,
    referral_id: &str,
    sequence: u32,
    note: &str,
    percent: u32,
) -> anyhow::Result<()> {
    anyhow::ensure!(uuid::Uuid::parse_str(referral_id).is_ok(), "referral id {referral_id:?} is not a UUID");
    anyhow::ensure!(note.chars().count() <= 2000, "a progress note must be at most 2000 characters");
    let progress = ReferralProgress {
        referral_id: referral_id.to_owned(),
        sequence,
        note: note.trim().to_owned(),
        percent: percent.min(100),
        reported_at: Some(id77_bus::time::to_proto(id77_bus::time::now())),
    };
    publish(conn, &progress, conn.ids.progress(referral_id, sequence)).await?;
    Ok(())
}

/// Says an accepted referral's work is done (once: a repeat is a duplicate).
pub(crate) async fn complete(conn: &Connection, referral_id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(uuid::Uuid::parse_str(referral_id).is_ok(), "referral id {referral_id:?} is not a UUID");
    let completion = ReferralReply {
        referral_id: referral_id.to_owned(),
        decision: ReplyDecision::Complete.into(),
        reason: String::new(),
        replied_at: Some(id77_bus::time::to_proto(id77_bus::time::now())),
        ..Default::default()
    };
    publish(conn, &completion, conn.ids.complete(referral_id)).await?;
    Ok(())
}
