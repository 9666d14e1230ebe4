//! Deliveries that could not be accepted (malformed JSON, missing identity
//! fields), kept byte for byte for inspection and replay.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rejected_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub received_at: i64,
    /// HTTP status the sender was given (400 or 422).
    pub status: i32,
    /// Machine-readable error code, e.g. `malformed_json`.
    pub error: String,
    /// The message the sender was given.
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub content_type: Option<String>,
    /// The body exactly as received (it may not be valid UTF-8).
    pub body: Vec<u8>,
    /// Set when the body was later replayed successfully.
    pub replayed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
