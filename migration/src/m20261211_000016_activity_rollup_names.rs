//! `activity_rollups` names its disposition columns as `activities` does
//! (`analysis_disposition`, `analysis_disposition_type`), as
//! `lead_rollups` names its own as `leads` does: the activity list's own
//! filter, folded by the same code, then selects exactly the rows that
//! count the activities it selects, so the rollup answers conditions on
//! the dispositions under any `and`/`or`/`not` (see
//! `graphql::aggregate::rollup_plan`). The rows and indexes are kept.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261211_000016_activity_rollup_names"
    }
}

const RENAMES: &[(&str, &str)] = &[
    ("disposition", "analysis_disposition"),
    ("disposition_type", "analysis_disposition_type"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, new) in RENAMES {
            rename(manager, old, new).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, new) in RENAMES {
            rename(manager, new, old).await?;
        }
        Ok(())
    }
}

async fn rename(manager: &SchemaManager<'_>, from: &str, to: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE activity_rollups RENAME COLUMN {from} TO {to}"
        ))
        .await?;
    Ok(())
}
