//! Transcript messages, in the order the platform sent them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub activity_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub lead_id: String,
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub timestamp: Option<i64>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
