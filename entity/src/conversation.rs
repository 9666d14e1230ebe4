//! The conversation of a connected call, one per activity.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub activity_id: String,
    pub lead_id: String,
    /// The platform's `conversationId`, when it sent one.
    pub conversation_id: Option<String>,
    pub project_id: Option<String>,
    pub flow_id: Option<String>,
    pub stream_id: Option<String>,
    pub call_sid: Option<String>,
    pub phone_hash: Option<String>,
    pub turn_count: Option<i32>,
    pub reconciled: Option<bool>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// The owning activity's timestamp, for ordering.
    pub timestamp: i64,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
