//! Current activities counted per extracted variable (name and value) and
//! project; kept by ingest (see `leadql::store::rollup`). Its columns are
//! named as `variables` names them, so a variable condition selects its
//! rows as it selects the variables.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "variable_rollups")]
pub struct Model {
    /// SHA-256 (hex) of the other three key columns.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub name: String,
    /// The value as text, as `variables.value_text` holds it.
    pub value_text: Option<String>,
    /// The activities' project.
    pub project_id: Option<String>,
    /// How many current activities extracted this value.
    pub activities: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
