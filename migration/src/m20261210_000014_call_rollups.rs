//! What `callStats` adds up, kept in `activity_rollups` beside the count of
//! activities: per project, period, disposition and type, the calls, the
//! calls that connected, the conversations with a turn count and their
//! turns, and the tool calls. The rows are emptied, so leadql counts them
//! all afresh after migrating (`store::migrate`), the new columns with the
//! rest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000014_call_rollups"
    }
}

const COLUMNS: &[&str] = &["calls", "connected", "turn_counts", "turns", "tool_calls"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // One column per statement: SQLite adds no more at once.
        for column in COLUMNS {
            db.execute_unprepared(&format!(
                "ALTER TABLE activity_rollups ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0"
            ))
            .await?;
        }
        db.execute_unprepared("DELETE FROM activity_rollups")
            .await?;
        if manager.get_database_backend() == DbBackend::Sqlite {
            // SQLite's index covers what is added up (PostgreSQL's bounded
            // index entries hold the key's numbers only).
            db.execute_unprepared(&format!(
                "CREATE INDEX activity_rollups_project_period_sums ON activity_rollups \
                 (project_id, span, start, disposition, disposition_type, activities, {})",
                COLUMNS.join(", ")
            ))
            .await?;
            db.execute_unprepared("DROP INDEX IF EXISTS activity_rollups_project_period")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Sqlite {
            db.execute_unprepared(
                "CREATE INDEX activity_rollups_project_period ON activity_rollups \
                 (project_id, span, start, disposition, disposition_type, activities)",
            )
            .await?;
            db.execute_unprepared("DROP INDEX IF EXISTS activity_rollups_project_period_sums")
                .await?;
        }
        for column in COLUMNS {
            db.execute_unprepared(&format!(
                "ALTER TABLE activity_rollups DROP COLUMN {column}"
            ))
            .await?;
        }
        Ok(())
    }
}
