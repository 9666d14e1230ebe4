//! The rollups' keys begin with what orders them (an activity's period,
//! a variable's name and value) before a shorter digest, so the rows one
//! batch changes share pages (leadql's `Rollup::key`). The keys stored
//! before are digests alone and no longer match, so the rollups are
//! emptied here, and leadql counts them afresh after migrating, as it
//! does after a migration that adds one (`build_if_missing`: an empty
//! rollup beside stored activities was never built). Nothing else
//! changes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261214_000021_ordered_rollup_keys"
    }
}

const ROLLUPS: [&str; 3] = [
    "DELETE FROM activity_rollups",
    "DELETE FROM lead_rollups",
    "DELETE FROM variable_rollups",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::script(manager, &ROLLUPS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Emptied again, so the leadql of the older keys counts them
        // afresh in its own keys.
        crate::script(manager, &ROLLUPS).await
    }
}
