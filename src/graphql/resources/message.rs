//! Transcript messages: one turn each, in the order the platform sent them.

use crate::graphql::engine::connection::connection;
use crate::graphql::engine::page::{KeyPart, SortKey};
use crate::graphql::engine::resource::{resource, Nullable};
use async_graphql::{Json, ID};
use chrono::{DateTime, Utc};
use entity::message;

/// One turn of a transcript.
#[resource(entity = message)]
pub struct Message {
    /// The call (conversation) this turn belongs to.
    #[field(key, hidden)]
    activity_id: ID,
    /// Who spoke (`user`, `assistant`, …), as sent.
    role: String,
    /// What was said.
    #[field(personal)]
    content: Nullable<String>,
    /// When it was said, when the platform sent a time.
    timestamp: Option<DateTime<Utc>>,
    /// 0-based place in the transcript.
    position: i32,
    /// Fields leadql has no column for.
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
}

/// Transcript order: the position, then the call.
pub fn message_key() -> SortKey<message::Entity> {
    SortKey::new(
        vec![KeyPart::of::<i32>(
            "position",
            message::Column::Position,
            false,
        )],
        vec![KeyPart::of::<ID>(
            "activityId",
            message::Column::ActivityId,
            false,
        )],
    )
}

connection!(
    MessageConnection,
    MessageEdge,
    Message,
    "A page of transcript messages (Relay connection).",
    "An edge in a list of transcript messages: one node and its cursor."
);
