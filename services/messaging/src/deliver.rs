//! The one send path, shared by HTTP and the socket: store, then publish.

use crate::AppState;
use crate::error::Result;
use crate::store::{self, Message};

/// Stores a message and, when it is new, publishes it to every replica for live
/// delivery. A failed publish (Redis down) is logged, not returned: the message is
/// stored, and its recipients get it when they sync.
pub async fn send(
    state: &AppState,
    me: &str,
    conversation: i64,
    client_id: &str,
    body: &str,
) -> Result<(Message, bool)> {
    let (m, members, duplicate) = store::send(&state.db, me, conversation, client_id, body).await?;
    if duplicate {
        return Ok((m, true));
    }
    let frame = serde_json::json!({"type": "message", "message": &m}).to_string();
    if let Err(e) = state
        .hub
        .publish(
            "message",
            format!("{conversation}:{}", m.seq),
            Some(conversation),
            members,
            frame,
        )
        .await
    {
        tracing::warn!(conversation, seq = m.seq, error = %e, "live delivery failed; members get the message when they sync");
    }
    Ok((m, false))
}
