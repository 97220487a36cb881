//! The conversation's stored rows as protobuf messages.

use id77_platform::time;
use id77_proto::requests::v1 as pb;

use super::store::{AttachmentRow, MessageRow};

pub fn attachment_to_proto(a: &AttachmentRow) -> pb::Attachment {
    pb::Attachment {
        id: a.id.to_string(),
        filename: a.filename.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
    }
}

/// A message with its own attachments among `attachments`.
pub fn message_to_proto(m: MessageRow, attachments: &[AttachmentRow]) -> pb::ConversationMessage {
    pb::ConversationMessage {
        id: m.id.to_string(),
        request_id: m.request_id.to_string(),
        author_user_id: m.author_user_id.to_string(),
        author_role: m.author_role,
        author_name: m.author_name,
        body: m.body,
        created_at: Some(time::to_proto(m.created_at)),
        attachments: attachments.iter().filter(|a| a.message_id == m.id).map(attachment_to_proto).collect(),
    }
}

/// A count for a protobuf `uint32` (saturating).
pub fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
