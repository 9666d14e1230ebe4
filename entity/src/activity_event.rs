//! The `activityRecorded` feed, persisted: one row each time an activity
//! is stored (new, or a newer version). The id is the cursor subscribers
//! resume from.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The activity stored (read as it is now).
    pub activity_id: String,
    /// Wall-clock time of the commit (epoch ms).
    pub recorded_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
