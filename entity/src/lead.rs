//! Leads, projected from their activities: current state, disposition and
//! summary come from the newest activity (by timestamp) that carries them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub reference_id: Option<String>,
    pub project_id: Option<String>,
    pub process_id: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub disposition: Option<String>,
    pub disposition_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    pub last_activity_id: Option<String>,
    pub last_activity_at: Option<i64>,
    pub first_activity_at: Option<i64>,
    pub activity_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
