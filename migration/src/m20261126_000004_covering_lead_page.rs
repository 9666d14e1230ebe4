//! The busiest list, a project's leads with one disposition newest first
//! (the sales team's "Interested" screen), answered from an index alone on
//! PostgreSQL: the index that orders it also carries the other columns of
//! a lead, so a page is an index-only scan instead of one heap visit per
//! row. It replaces the index of the same key without those columns.
//! SQLite reads its rows from the table cheaply enough and is unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000004_covering_lead_page"
    }
}

const UP: &[&str] = &[
    "CREATE INDEX leads_project_disposition_page ON leads \
     (project_id, lower(disposition), last_activity_at NULLS FIRST, id) \
     INCLUDE (reference_id, process_id, name, state, disposition, disposition_type, summary, \
     last_activity_id, first_activity_at, activity_count)",
    "DROP INDEX IF EXISTS leads_project_disposition_ci",
];

const DOWN: &[&str] = &[
    "CREATE INDEX leads_project_disposition_ci ON leads \
     (project_id, lower(disposition), last_activity_at NULLS FIRST, id)",
    "DROP INDEX IF EXISTS leads_project_disposition_page",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    crate::script(manager, statements).await
}
