//! Activities (call attempts, schedules, …): the current version of each
//! `activityId`, flattened from the payload. Parts without a fixed shape are
//! JSON columns; fields leadql does not know are kept in `extra`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub lead_id: String,
    /// Payload `timestamp` (epoch ms) of the version stored here.
    pub timestamp: i64,
    /// Body hash of the delivery this version came from (see `deliveries`).
    pub version_hash: String,
    pub action_type: Option<String>,
    pub r#type: Option<String>,
    pub status: Option<String>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub next_state: Option<String>,
    pub scheduled_at: Option<i64>,
    pub call_status: Option<String>,
    pub result_status: Option<String>,
    pub result_success: Option<bool>,
    pub attempt_number: Option<i32>,
    pub attempt_log_id: Option<String>,
    pub is_connected: Option<bool>,
    pub channel_id: Option<i64>,
    pub ws_id: Option<i64>,
    pub telephony_type: Option<String>,
    pub has_transfer: Option<bool>,
    pub flow_id: Option<String>,
    pub project_id: Option<String>,
    pub process_id: Option<String>,
    pub reference_id: Option<String>,
    pub last_activity_id: Option<String>,
    pub conversation_id: Option<String>,
    pub provider_call_id: Option<String>,
    /// `result.input.name`, the lead's name as the platform knew it then.
    pub lead_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub lead_summary: Option<String>,
    pub lead_disposition: Option<String>,
    /// Copies of the analysis fields, so per-disposition counts and the lead
    /// projection read one table.
    pub analysis_disposition: Option<String>,
    pub analysis_disposition_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub analysis_summary: Option<String>,
    pub has_conversation: bool,
    /// The language the platform inferred (`variables.variables.inferredLanguage`).
    pub language: Option<String>,
    /// Whether the agent promised a callback in this activity (a tool call
    /// whose name says callback, or callback variables), and the promise as
    /// sent: the facts the `callbacks` projection is computed from.
    pub callback_promised: bool,
    pub callback_tool_call_id: Option<String>,
    pub callback_date: Option<String>,
    pub callback_time: Option<String>,
    /// The payload's own offset from UTC, minutes east (see `Promise`).
    pub callback_offset: Option<i32>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub input: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub variables: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// Every field of the payload that has no column above, by level
    /// (`payload`, `activity`, `result`).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
