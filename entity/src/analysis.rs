//! The platform's analysis of an activity: disposition and summary.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "analyses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub activity_id: String,
    pub lead_id: String,
    pub project_id: Option<String>,
    pub success: Option<bool>,
    pub disposition: Option<String>,
    /// As given (`success`, `failure`, `neutral`, or others such as `positive`).
    pub disposition_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    pub timestamp: Option<i64>,
    /// The owning activity's timestamp, for ordering.
    pub activity_timestamp: i64,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extra: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
