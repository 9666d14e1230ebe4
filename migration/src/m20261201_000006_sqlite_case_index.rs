//! SQLite: the index of a project's leads by disposition over
//! `leadql_lower(disposition)`, the case folding leadql uses on SQLite
//! (Unicode lowercase; SQLite's own `lower()` folds ASCII only), so
//! disposition filters keep using it. PostgreSQL's `lower()` already folds
//! Unicode and is unchanged.
//!
//! `leadql_lower` is registered on every connection leadql opens (see
//! `store::case`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_sqlite_case_index"
    }
}

const UP: &[&str] = &[
    "DROP INDEX IF EXISTS leads_project_disposition_ci",
    "CREATE INDEX leads_project_disposition_ci ON leads \
     (project_id, leadql_lower(disposition), last_activity_at, id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS leads_project_disposition_ci",
    "CREATE INDEX leads_project_disposition_ci ON leads \
     (project_id, lower(disposition), last_activity_at, id)",
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
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    crate::script(manager, statements).await
}
