//! Callbacks: the promise each activity made (columns of `activities`, the
//! facts) and the `callbacks` projection computed from them, with an index
//! for each way the API lists callbacks: by project and status in due
//! order (the sales floor's question), by status alone, by lead, all, and
//! a lead's open one (`Lead.nextCallback`).
//!
//! Activities stored before this migration have no promise noted:
//! `leadql reproject` reads them again from the delivery log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000009_callbacks"
    }
}

const PROMISE_COLUMNS: [&str; 5] = [
    "callback_promised",
    "callback_tool_call_id",
    "callback_date",
    "callback_time",
    "callback_offset",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let columns = [
            ColumnDef::new("callback_promised")
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new("callback_tool_call_id")
                .text()
                .null()
                .to_owned(),
            ColumnDef::new("callback_date").text().null().to_owned(),
            ColumnDef::new("callback_time").text().null().to_owned(),
            ColumnDef::new("callback_offset")
                .integer()
                .null()
                .to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("activities")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("callbacks")
                    .col(text("id").primary_key())
                    .col(text("lead_id"))
                    .col(text("activity_id"))
                    .col(text_null("project_id"))
                    .col(text_null("tool_call_id"))
                    .col(big_integer("requested_at"))
                    .col(big_integer_null("due_at"))
                    .col(big_integer("due_order"))
                    .col(text_null("local_date"))
                    .col(text_null("local_time"))
                    .col(text_null("timezone"))
                    .col(text("state"))
                    .col(text_null("open_lead_id"))
                    .col(text_null("fulfilled_by"))
                    .col(text_null("superseded_by"))
                    .col(big_integer_null("closed_at"))
                    .take(),
            )
            .await?;
        let indexes: [(&str, &[&str]); 5] = [
            (
                "callbacks_project_state_due",
                &["project_id", "state", "due_order", "id"],
            ),
            ("callbacks_state_due", &["state", "due_order", "id"]),
            ("callbacks_lead_due", &["lead_id", "due_order", "id"]),
            ("callbacks_due", &["due_order", "id"]),
            ("callbacks_open_lead", &["open_lead_id"]),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table("callbacks");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("callbacks").to_owned())
            .await?;
        for column in PROMISE_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("activities")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
