//! `lead_rollups`: leads counted per project, current disposition and
//! disposition type, kept by ingest with the leads, so `leadFunnel` need
//! not group every lead of a project. `key` is a digest of the other three
//! columns. Filled by leadql after migrating, as `activity_rollups` is.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000012_lead_rollups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table("lead_rollups")
            .col(text("key").primary_key())
            .col(text_null("project_id"))
            .col(text_null("disposition"))
            .col(text_null("disposition_type"))
            .col(big_integer("leads"))
            .take();
        if manager.get_database_backend() == DbBackend::Sqlite {
            table.extra("WITHOUT ROWID");
        }
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("lead_rollups_project")
                    .table("lead_rollups")
                    .col("project_id")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("lead_rollups").to_owned())
            .await
    }
}
