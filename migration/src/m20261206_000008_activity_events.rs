//! `activity_events`: the `activityRecorded` feed's log, so a subscriber
//! can resume after a cursor. It starts empty: activities stored before
//! this migration cannot be replayed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000008_activity_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("activity_events")
                    .col(big_pk_auto("id"))
                    .col(text("activity_id"))
                    .col(big_integer("recorded_at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("activity_events").to_owned())
            .await
    }
}
