//! Variables extracted during a call (`result.variables.variables`), one row
//! per name, so they can be filtered by name and value.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "variables")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub activity_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub lead_id: String,
    pub project_id: Option<String>,
    /// The value as text (strings as they are, other scalars as JSON text),
    /// null for JSON null; what `VariableFilter` compares.
    #[sea_orm(column_type = "Text", nullable)]
    pub value_text: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub value: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
