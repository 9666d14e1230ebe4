//! Persisted disposition changes: a lead's disposition taking a new value.
//! The id is the cursor subscribers resume from.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "disposition_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub lead_id: String,
    pub activity_id: String,
    pub project_id: Option<String>,
    pub previous_disposition: Option<String>,
    pub disposition: String,
    pub disposition_type: Option<String>,
    /// Timestamp of the activity that caused the change (epoch ms).
    pub occurred_at: i64,
    /// Wall-clock time of the commit (epoch ms).
    pub recorded_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
