//! `variable_rollups`: current activities counted per extracted variable
//! (name and value) and project, kept by ingest with the variables, so the
//! `totalCount` of activities with a variable reads a row per project
//! and value instead of an index entry per activity (a common value is
//! held by a third of all activities). `key` is a digest of the other
//! three columns. Filled by leadql after migrating, as the other rollups
//! are. The index leaves the count out: an increment then changes the row
//! alone (on PostgreSQL, in place), and a count reads each row it sums by
//! its key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261213_000020_variable_rollups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table("variable_rollups")
            .col(text("key").primary_key())
            .col(text("name"))
            .col(text_null("value_text"))
            .col(text_null("project_id"))
            .col(big_integer("activities"))
            .take();
        let index = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                table.extra("WITHOUT ROWID");
                "CREATE INDEX variable_rollups_name_value ON variable_rollups \
                 (name, value_text, project_id)"
            }
            _ => {
                "CREATE INDEX variable_rollups_name_value ON variable_rollups \
                 (name, value_text, project_id)"
            }
        };
        manager.create_table(table).await?;
        crate::script(manager, &[index]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("variable_rollups").to_owned())
            .await
    }
}
