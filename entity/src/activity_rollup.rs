//! Activities counted per project, UTC hour and day, analysis disposition
//! and disposition type, with what `callStats` adds up of them; kept by
//! ingest (see `leadql::store::rollup`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_rollups")]
pub struct Model {
    /// SHA-256 (hex) of the other five key columns.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub project_id: Option<String>,
    /// The period's length: an hour or a day, in ms.
    pub span: i64,
    /// Start of the period (UTC) holding the activities' `timestamp`
    /// (epoch ms).
    pub start: i64,
    /// `result.analysis.disposition` (null: none), named as `activities`
    /// names it.
    pub analysis_disposition: Option<String>,
    pub analysis_disposition_type: Option<String>,
    /// How many current activities have this key.
    pub activities: i64,
    /// How many of them are calls (`type` "call").
    pub calls: i64,
    /// How many of the calls connected (as `callStats` counts them).
    pub connected: i64,
    /// How many of them have a conversation with a `turnCount`...
    pub turn_counts: i64,
    /// ...and those turn counts added up.
    pub turns: i64,
    /// How many tool calls they made.
    pub tool_calls: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
