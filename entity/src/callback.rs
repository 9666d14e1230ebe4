//! Promised callbacks: one row per activity in which the agent promised to
//! call the lead back, recomputed from the lead's activities at ingest
//! (see `store::callbacks`), so it converges whatever the delivery order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "callbacks")]
pub struct Model {
    /// The id of the activity that made the promise (one promise each).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub lead_id: String,
    pub activity_id: String,
    /// The lead's project (as the lead row has it).
    pub project_id: Option<String>,
    /// The tool call that recorded it, when one did.
    pub tool_call_id: Option<String>,
    /// Timestamp of the promising activity (epoch ms).
    pub requested_at: i64,
    /// The promised moment (epoch ms); null when the text could not be read.
    pub due_at: Option<i64>,
    /// `due_at`, or `i64::MAX` when unknown: the sort key that puts unknown
    /// moments last.
    pub due_order: i64,
    pub local_date: Option<String>,
    pub local_time: Option<String>,
    /// The IANA zone or UTC offset the local text was read in.
    pub timezone: Option<String>,
    /// `open` (PENDING or DUE, by `due_at` against the clock), `done` or
    /// `superseded`.
    pub state: String,
    /// The lead's id while the callback is open, else null: a lead has at
    /// most one open callback (of two promises, the older is done or
    /// superseded), found by this column.
    pub open_lead_id: Option<String>,
    /// The call attempt that honoured it (state `done`).
    pub fulfilled_by: Option<String>,
    /// The activity whose newer promise replaced it (state `superseded`).
    pub superseded_by: Option<String>,
    /// When it was done or superseded (epoch ms).
    pub closed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
