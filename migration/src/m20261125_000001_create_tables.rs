//! The first schema: the raw delivery log, rejected deliveries, and every
//! projection (leads, activities and their parts, lead updates, disposition
//! events), with an index for each lookup the API makes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_create_tables"
    }
}

/// A nullable JSON column: JSONB on PostgreSQL, JSON text on SQLite.
fn json_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).json_binary().null().take()
}

/// Tables keyed by the platform's ids are stored in their primary-key
/// B-tree on SQLite (WITHOUT ROWID), saving one index write per row.
fn keyed(sqlite: bool, mut table: TableCreateStatement) -> TableCreateStatement {
    if sqlite {
        table.extra("WITHOUT ROWID");
    }
    table
}

fn index(
    table: &'static str,
    name: &'static str,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for column in columns {
        stmt.col(*column);
    }
    stmt.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("deliveries")
                    .col(big_pk_auto("id"))
                    .col(text_uniq("body_hash"))
                    .col(text("kind"))
                    .col(text("source_id"))
                    .col(text("lead_id"))
                    .col(big_integer("timestamp"))
                    .col(text("outcome"))
                    .col(text("body"))
                    .col(big_integer("received_at"))
                    .col(integer("duplicate_count").default(0))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rejected_deliveries")
                    .col(big_pk_auto("id"))
                    .col(big_integer("received_at"))
                    .col(integer("status"))
                    .col(text("error"))
                    .col(text("message"))
                    .col(text_null("content_type"))
                    .col(blob("body"))
                    .col(big_integer_null("replayed_at"))
                    .take(),
            )
            .await?;
        let sqlite = manager.get_database_backend() == DbBackend::Sqlite;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("leads")
                    .col(text("id").primary_key())
                    .col(text_null("reference_id"))
                    .col(text_null("project_id"))
                    .col(text_null("process_id"))
                    .col(text_null("name"))
                    .col(text_null("state"))
                    .col(text_null("disposition"))
                    .col(text_null("disposition_type"))
                    .col(text_null("summary"))
                    .col(text_null("last_activity_id"))
                    .col(big_integer_null("last_activity_at"))
                    .col(big_integer_null("first_activity_at"))
                    .col(integer("activity_count").default(0))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("activities")
                    .col(text("id").primary_key())
                    .col(text("lead_id"))
                    .col(big_integer("timestamp"))
                    .col(text("version_hash"))
                    .col(text_null("action_type"))
                    .col(text_null("type"))
                    .col(text_null("status"))
                    .col(text_null("from_state"))
                    .col(text_null("to_state"))
                    .col(text_null("next_state"))
                    .col(big_integer_null("scheduled_at"))
                    .col(text_null("call_status"))
                    .col(text_null("result_status"))
                    .col(boolean_null("result_success"))
                    .col(integer_null("attempt_number"))
                    .col(text_null("attempt_log_id"))
                    .col(boolean_null("is_connected"))
                    .col(big_integer_null("channel_id"))
                    .col(big_integer_null("ws_id"))
                    .col(text_null("telephony_type"))
                    .col(boolean_null("has_transfer"))
                    .col(text_null("flow_id"))
                    .col(text_null("project_id"))
                    .col(text_null("process_id"))
                    .col(text_null("reference_id"))
                    .col(text_null("last_activity_id"))
                    .col(text_null("conversation_id"))
                    .col(text_null("provider_call_id"))
                    .col(text_null("lead_name"))
                    .col(text_null("lead_summary"))
                    .col(text_null("lead_disposition"))
                    .col(text_null("analysis_disposition"))
                    .col(text_null("analysis_disposition_type"))
                    .col(text_null("analysis_summary"))
                    .col(boolean("has_conversation"))
                    .col(json_null("input"))
                    .col(json_null("variables"))
                    .col(json_null("metadata"))
                    .col(json_null("extra"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("conversations")
                    .col(text("activity_id").primary_key())
                    .col(text("lead_id"))
                    .col(text_null("conversation_id"))
                    .col(text_null("project_id"))
                    .col(text_null("flow_id"))
                    .col(text_null("stream_id"))
                    .col(text_null("call_sid"))
                    .col(text_null("phone_hash"))
                    .col(integer_null("turn_count"))
                    .col(boolean_null("reconciled"))
                    .col(big_integer_null("created_at"))
                    .col(big_integer_null("updated_at"))
                    .col(big_integer("timestamp"))
                    .col(json_null("extra"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("messages")
                    .col(text("activity_id"))
                    .col(integer("position"))
                    .col(text("lead_id"))
                    .col(text("role"))
                    .col(text("content"))
                    .col(big_integer_null("timestamp"))
                    .col(json_null("extra"))
                    .primary_key(Index::create().col("activity_id").col("position"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("tool_calls")
                    .col(text("activity_id"))
                    .col(integer("position"))
                    .col(text("lead_id"))
                    .col(text_null("project_id"))
                    .col(text_null("tool_call_id"))
                    .col(text("name"))
                    .col(json_null("arguments"))
                    .col(json_null("response"))
                    .col(boolean_null("success"))
                    .col(text_null("utterance_id"))
                    .col(big_integer_null("timestamp"))
                    .col(json_null("extra"))
                    .primary_key(Index::create().col("activity_id").col("position"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("analyses")
                    .col(text("activity_id").primary_key())
                    .col(text("lead_id"))
                    .col(text_null("project_id"))
                    .col(boolean_null("success"))
                    .col(text_null("disposition"))
                    .col(text_null("disposition_type"))
                    .col(text_null("summary"))
                    .col(big_integer_null("timestamp"))
                    .col(big_integer("activity_timestamp"))
                    .col(json_null("extra"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("variables")
                    .col(text("activity_id"))
                    .col(text("name"))
                    .col(text("lead_id"))
                    .col(text_null("project_id"))
                    .col(text_null("value_text"))
                    .col(json_null("value"))
                    .primary_key(Index::create().col("activity_id").col("name"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(keyed(
                sqlite,
                Table::create()
                    .table("lead_updates")
                    .col(text("id").primary_key())
                    .col(text("lead_id"))
                    .col(big_integer("timestamp"))
                    .col(text("version_hash"))
                    .col(text_null("action_type"))
                    .col(boolean_null("success"))
                    .col(text_null("error"))
                    .col(text_null("reference_id"))
                    .col(json_null("data"))
                    .col(json_null("extra"))
                    .take(),
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("disposition_events")
                    .col(big_pk_auto("id"))
                    .col(text("lead_id"))
                    .col(text("activity_id"))
                    .col(text_null("project_id"))
                    .col(text_null("previous_disposition"))
                    .col(text("disposition"))
                    .col(text_null("disposition_type"))
                    .col(big_integer("occurred_at"))
                    .col(big_integer("recorded_at"))
                    .take(),
            )
            .await?;

        // One index per lookup the API and the ingest path make.
        let indexes = [
            index("rejected_deliveries", "rejected_received", &["received_at"]),
            index("leads", "leads_last_activity", &["last_activity_at", "id"]),
            index(
                "leads",
                "leads_project_last_activity",
                &["project_id", "last_activity_at", "id"],
            ),
            index(
                "leads",
                "leads_disposition_last_activity",
                &["disposition", "last_activity_at"],
            ),
            index(
                "leads",
                "leads_project_disposition",
                &["project_id", "disposition"],
            ),
            index("leads", "leads_state", &["state"]),
            index("leads", "leads_reference", &["reference_id"]),
            index(
                "activities",
                "activities_lead_time",
                &["lead_id", "timestamp", "id"],
            ),
            index("activities", "activities_time", &["timestamp", "id"]),
            index(
                "activities",
                "activities_project_time",
                &[
                    "project_id",
                    "timestamp",
                    "analysis_disposition",
                    "analysis_disposition_type",
                ],
            ),
            index(
                "activities",
                "activities_disposition_time",
                &["analysis_disposition", "timestamp"],
            ),
            index(
                "conversations",
                "conversations_lead",
                &["lead_id", "timestamp"],
            ),
            index(
                "conversations",
                "conversations_external",
                &["conversation_id"],
            ),
            index(
                "conversations",
                "conversations_project_time",
                &["project_id", "timestamp"],
            ),
            index("tool_calls", "tool_calls_lead", &["lead_id"]),
            index("tool_calls", "tool_calls_name", &["name"]),
            index(
                "tool_calls",
                "tool_calls_project_time",
                &["project_id", "timestamp"],
            ),
            index("analyses", "analyses_lead", &["lead_id"]),
            index(
                "analyses",
                "analyses_project_disposition",
                &["project_id", "disposition"],
            ),
            index("analyses", "analyses_time", &["activity_timestamp"]),
            index("variables", "variables_name_value", &["name", "value_text"]),
            index(
                "lead_updates",
                "lead_updates_lead_time",
                &["lead_id", "timestamp"],
            ),
            index(
                "disposition_events",
                "disposition_events_lead",
                &["lead_id", "id"],
            ),
            index(
                "disposition_events",
                "disposition_events_project",
                &["project_id", "id"],
            ),
        ];
        for stmt in indexes {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "disposition_events",
            "lead_updates",
            "variables",
            "analyses",
            "tool_calls",
            "messages",
            "conversations",
            "activities",
            "leads",
            "rejected_deliveries",
            "deliveries",
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
