//! Leads counted per project, current disposition and disposition type;
//! kept by ingest (see `leadql::store::rollup`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_rollups")]
pub struct Model {
    /// SHA-256 (hex) of the other three key columns.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub project_id: Option<String>,
    /// The leads' current disposition (null: none yet).
    pub disposition: Option<String>,
    pub disposition_type: Option<String>,
    /// How many leads have this key now.
    pub leads: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
