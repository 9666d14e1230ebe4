//! API keys for the GraphQL API. Only a SHA-256 hash of each key is kept;
//! the key itself is shown once, when it is made.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// SHA-256 (hex) of the key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// The key's first characters, to tell keys apart in listings.
    pub prefix: String,
    /// Project ids the key may see (a JSON array); null: every project.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub projects: Option<Json>,
    /// `full` (every field) or `analyst` (no personal data).
    pub role: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
