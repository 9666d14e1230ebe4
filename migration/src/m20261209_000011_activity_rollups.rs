//! `activity_rollups`: activities counted per project, UTC hour and UTC
//! day (`span` is the period's length in ms, `start` its start, of the
//! activity's `timestamp`), analysis disposition and disposition type,
//! kept by ingest in the same transaction as the activities, so the
//! dashboards' counts need not scan every activity. `key` is a digest of
//! the other five columns (which may be null, and may be long). The index
//! covers the counts on SQLite; on PostgreSQL, whose index entries are
//! bounded, it holds no payload text.
//!
//! The table starts empty: leadql fills it from the stored activities
//! after migrating (`store::migrate`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000011_activity_rollups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table("activity_rollups")
            .col(text("key").primary_key())
            .col(text_null("project_id"))
            .col(big_integer("span"))
            .col(big_integer("start"))
            .col(text_null("disposition"))
            .col(text_null("disposition_type"))
            .col(big_integer("activities"))
            .take();
        if manager.get_database_backend() == DbBackend::Sqlite {
            table.extra("WITHOUT ROWID");
        }
        manager.create_table(table).await?;
        let mut index = Index::create();
        index
            .name("activity_rollups_project_period")
            .table("activity_rollups")
            .col("project_id")
            .col("span")
            .col("start");
        if manager.get_database_backend() == DbBackend::Sqlite {
            index
                .col("disposition")
                .col("disposition_type")
                .col("activities");
        }
        manager.create_index(index.take()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("activity_rollups").to_owned())
            .await
    }
}
