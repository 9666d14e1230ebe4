//! Results of the platform's asynchronous "update lead" calls (`updateId`
//! payloads), the current version of each.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_updates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub lead_id: String,
    pub timestamp: i64,
    pub version_hash: String,
    pub action_type: Option<String>,
    pub success: Option<bool>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub reference_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub data: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
