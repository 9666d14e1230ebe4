//! On PostgreSQL, a pg_trgm index on lead names, so `name: {contains}`
//! (ILIKE) of three characters or more looks its leads up instead of
//! reading every lead: at 100,000 leads, counting the 8,323 leads whose
//! name contains "Khan" took 9 ms instead of 46 ms, and the first page of
//! a name nobody has 1.3 ms instead of 37 ms. Shorter terms have no
//! trigram, and PostgreSQL still reads the table for them, as before.
//! The extension is the one transcript search already uses (migration 2).
//!
//! SQLite is unchanged: its `contains` compares leadql's own case folding,
//! which no index of SQLite's serves.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261212_000018_lead_name_trigrams"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::script(
            manager,
            &["CREATE INDEX leads_name_trgm ON leads USING gin (name gin_trgm_ops)"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::script(manager, &["DROP INDEX IF EXISTS leads_name_trgm"]).await
    }
}
