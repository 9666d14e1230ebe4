//! Counts of activities by an extracted variable read one index: the
//! index on a variable's name and value also carries the activity and the
//! lead, so `totalCount` of a `variable` filter counts index entries (also
//! for a scoped key, which sees a variable by its lead), and the exact
//! path's `id IN (SELECT activity_id …)` is an index-only scan instead of
//! one table visit per match. It replaces the index of the same key
//! without them. PostgreSQL also gets statistics on name and value
//! together: alone, each column's statistics put a common value of one
//! name at a seventh of its real count, which picked plans for rare
//! values.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000013_covering_variables"
    }
}

const POSTGRES_UP: &[&str] = &[
    "CREATE INDEX variables_name_value_cover ON variables (name, value_text) \
     INCLUDE (activity_id, lead_id)",
    "DROP INDEX IF EXISTS variables_name_value",
    "CREATE STATISTICS IF NOT EXISTS variables_name_value_stats (mcv, ndistinct, dependencies) \
     ON name, value_text FROM variables",
    // The new statistics are empty until the table is analyzed.
    "ANALYZE variables",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP STATISTICS IF EXISTS variables_name_value_stats",
    "CREATE INDEX variables_name_value ON variables (name, value_text)",
    "DROP INDEX IF EXISTS variables_name_value_cover",
];

// SQLite's table is keyed WITHOUT ROWID, so its indexes end with the key
// (activity_id, name) already; the lead is the column to add.
const SQLITE_UP: &[&str] = &[
    "CREATE INDEX variables_name_value_cover ON variables (name, value_text, lead_id)",
    "DROP INDEX IF EXISTS variables_name_value",
    "ANALYZE variables",
];

const SQLITE_DOWN: &[&str] = &[
    "CREATE INDEX variables_name_value ON variables (name, value_text)",
    "DROP INDEX IF EXISTS variables_name_value_cover",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, POSTGRES_DOWN, SQLITE_DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let statements = match manager.get_database_backend() {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
