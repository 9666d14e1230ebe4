//! API keys (hashed) for the GraphQL API.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000003_api_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(big_pk_auto("id"))
                    .col(text("name").unique_key())
                    .col(text("key_hash").unique_key())
                    .col(text("prefix"))
                    .col(ColumnDef::new("projects").json_binary().null())
                    .col(big_integer("created_at"))
                    .col(big_integer_null("last_used_at"))
                    .col(big_integer_null("revoked_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("api_keys").to_owned())
            .await
    }
}
