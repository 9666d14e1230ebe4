//! Tool calls the agent made during a conversation, in order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tool_calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub activity_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub lead_id: String,
    pub project_id: Option<String>,
    pub tool_call_id: Option<String>,
    pub name: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub arguments: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub response: Option<Json>,
    /// `response.success`, when the response says.
    pub success: Option<bool>,
    pub utterance_id: Option<String>,
    pub timestamp: Option<i64>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
