//! `activities.language`: the language the platform inferred for a call
//! (`result.variables.variables.inferredLanguage`), filterable and
//! sortable. Rows stored before are filled from their `variables` JSON.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_activity_language"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("activities")
                    .add_column(ColumnDef::new("language").text().null())
                    .to_owned(),
            )
            .await?;
        let (fill, index) = match manager.get_database_backend() {
            DbBackend::Postgres => (
                "UPDATE activities SET language = variables->'variables'->>'inferredLanguage' \
                 WHERE jsonb_typeof(variables->'variables'->'inferredLanguage') = 'string'",
                "CREATE INDEX activities_language ON activities (language NULLS FIRST, id)",
            ),
            _ => (
                "UPDATE activities SET language = json_extract(variables, '$.variables.inferredLanguage') \
                 WHERE json_type(variables, '$.variables.inferredLanguage') = 'text'",
                "CREATE INDEX activities_language ON activities (language, id)",
            ),
        };
        let db = manager.get_connection();
        db.execute_unprepared(fill).await?;
        db.execute_unprepared(index).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS activities_language")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("activities")
                    .drop_column("language")
                    .to_owned(),
            )
            .await
    }
}
