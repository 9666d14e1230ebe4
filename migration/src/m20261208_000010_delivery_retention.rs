//! `deliveries.pruned_at`: when retention (`leadql prune`) removed the raw
//! body of an old accepted delivery. The row itself stays, so a repeat of
//! the body is still recognised as a duplicate, and `reproject` knows
//! which leads it can no longer rebuild.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000010_delivery_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .add_column(ColumnDef::new("pruned_at").big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .drop_column("pruned_at")
                    .to_owned(),
            )
            .await
    }
}
