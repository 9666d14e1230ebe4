//! The raw delivery log: every accepted webhook body exactly as received.
//! It is the source of truth from which `leadql reproject` rebuilds every
//! projection, except for bodies that retention removed (`pruned_at`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of the canonical JSON form of the body; equal bodies are duplicates.
    #[sea_orm(unique)]
    pub body_hash: String,
    /// `activity` or `update`.
    pub kind: String,
    /// `activityId` or `updateId` of the payload.
    pub source_id: String,
    pub lead_id: String,
    /// The payload's `timestamp` (epoch ms); orders versions of one activity.
    pub timestamp: i64,
    /// `stored` (became the current version) or `stale` (an older version).
    pub outcome: String,
    /// The body as received; empty once retention pruned it (`pruned_at`).
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// Wall-clock time the delivery was committed (epoch ms).
    pub received_at: i64,
    /// How many times the same body arrived again after the first time.
    pub duplicate_count: i32,
    /// When `leadql prune` removed the body (epoch ms); the row is kept.
    pub pruned_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
