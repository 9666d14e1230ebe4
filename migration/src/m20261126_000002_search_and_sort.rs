//! Indexes for the GraphQL API: text search and every sortable field.
//!
//! Search is a case-insensitive substring match. SQLite: the searchable
//! text (transcript messages, analysis summaries, lead summaries) is copied
//! by triggers into `search_documents`, indexed by an FTS5 trigram table.
//! PostgreSQL: trigram GIN indexes (pg_trgm) on the columns themselves,
//! which serve ILIKE '%…%'.
//!
//! Sorting: NULL is the smallest value on both databases (SQLite's order);
//! PostgreSQL indexes on nullable sort columns are built NULLS FIRST to
//! match, so ORDER BY … NULLS FIRST / DESC NULLS LAST walks an index.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_search_and_sort"
    }
}

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE search_documents (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,          -- m: message, a: analysis summary, l: lead summary
        lead_id TEXT NOT NULL,
        activity_id TEXT,
        position INTEGER,
        body TEXT NOT NULL
    )",
    "CREATE INDEX search_documents_owner ON search_documents (kind, activity_id, position)",
    "CREATE INDEX search_documents_lead ON search_documents (kind, lead_id)",
    "CREATE VIRTUAL TABLE search_text USING fts5(
        body, content='search_documents', content_rowid='id', tokenize='trigram'
    )",
    "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN
        INSERT INTO search_text (rowid, body) VALUES (new.id, new.body);
    END",
    "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN
        INSERT INTO search_text (search_text, rowid, body) VALUES ('delete', old.id, old.body);
    END",
    "CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
        INSERT INTO search_documents (kind, lead_id, activity_id, position, body)
        VALUES ('m', new.lead_id, new.activity_id, new.position, new.content);
    END",
    "CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
        DELETE FROM search_documents
        WHERE kind = 'm' AND activity_id = old.activity_id AND position = old.position;
    END",
    "CREATE TRIGGER analyses_search_ai AFTER INSERT ON analyses WHEN new.summary IS NOT NULL BEGIN
        INSERT INTO search_documents (kind, lead_id, activity_id, body)
        VALUES ('a', new.lead_id, new.activity_id, new.summary);
    END",
    "CREATE TRIGGER analyses_search_ad AFTER DELETE ON analyses BEGIN
        DELETE FROM search_documents WHERE kind = 'a' AND activity_id = old.activity_id;
    END",
    "CREATE TRIGGER analyses_search_au AFTER UPDATE ON analyses BEGIN
        DELETE FROM search_documents WHERE kind = 'a' AND activity_id = old.activity_id;
        INSERT INTO search_documents (kind, lead_id, activity_id, body)
        SELECT 'a', new.lead_id, new.activity_id, new.summary WHERE new.summary IS NOT NULL;
    END",
    "CREATE TRIGGER leads_search_ai AFTER INSERT ON leads WHEN new.summary IS NOT NULL BEGIN
        INSERT INTO search_documents (kind, lead_id, body) VALUES ('l', new.id, new.summary);
    END",
    "CREATE TRIGGER leads_search_ad AFTER DELETE ON leads BEGIN
        DELETE FROM search_documents WHERE kind = 'l' AND lead_id = old.id;
    END",
    "CREATE TRIGGER leads_search_au AFTER UPDATE OF summary ON leads
        WHEN old.summary IS NOT new.summary BEGIN
        DELETE FROM search_documents WHERE kind = 'l' AND lead_id = old.id;
        INSERT INTO search_documents (kind, lead_id, body)
        SELECT 'l', new.id, new.summary WHERE new.summary IS NOT NULL;
    END",
    // What was stored before this migration.
    "INSERT INTO search_documents (kind, lead_id, activity_id, position, body)
        SELECT 'm', lead_id, activity_id, position, content FROM messages",
    "INSERT INTO search_documents (kind, lead_id, activity_id, body)
        SELECT 'a', lead_id, activity_id, summary FROM analyses WHERE summary IS NOT NULL",
    "INSERT INTO search_documents (kind, lead_id, body)
        SELECT 'l', id, summary FROM leads WHERE summary IS NOT NULL",
    // Sorting and the common filter + sort combinations.
    "CREATE INDEX leads_first_activity ON leads (first_activity_at, id)",
    "CREATE INDEX leads_name ON leads (name, id)",
    "CREATE INDEX leads_activity_count ON leads (activity_count, id)",
    "CREATE INDEX leads_project_disposition_ci ON leads (project_id, lower(disposition), last_activity_at, id)",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS leads_project_disposition_ci",
    "DROP INDEX IF EXISTS leads_activity_count",
    "DROP INDEX IF EXISTS leads_name",
    "DROP INDEX IF EXISTS leads_first_activity",
    "DROP TRIGGER IF EXISTS leads_search_au",
    "DROP TRIGGER IF EXISTS leads_search_ad",
    "DROP TRIGGER IF EXISTS leads_search_ai",
    "DROP TRIGGER IF EXISTS analyses_search_au",
    "DROP TRIGGER IF EXISTS analyses_search_ad",
    "DROP TRIGGER IF EXISTS analyses_search_ai",
    "DROP TRIGGER IF EXISTS messages_search_ad",
    "DROP TRIGGER IF EXISTS messages_search_ai",
    "DROP TABLE IF EXISTS search_text",
    "DROP TABLE IF EXISTS search_documents",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX messages_content_trgm ON messages USING gin (content gin_trgm_ops)",
    "CREATE INDEX analyses_summary_trgm ON analyses USING gin (summary gin_trgm_ops)",
    "CREATE INDEX leads_summary_trgm ON leads USING gin (summary gin_trgm_ops)",
    // Nullable sort columns: NULLS FIRST, as the API orders them.
    "DROP INDEX IF EXISTS leads_project_last_activity",
    "CREATE INDEX leads_project_last_activity ON leads (project_id, last_activity_at NULLS FIRST, id)",
    "DROP INDEX IF EXISTS leads_disposition_last_activity",
    "CREATE INDEX leads_disposition_last_activity ON leads (disposition, last_activity_at NULLS FIRST, id)",
    "DROP INDEX IF EXISTS leads_last_activity",
    "CREATE INDEX leads_last_activity ON leads (last_activity_at NULLS FIRST, id)",
    "CREATE INDEX leads_first_activity ON leads (first_activity_at NULLS FIRST, id)",
    "CREATE INDEX leads_name ON leads (name NULLS FIRST, id)",
    "CREATE INDEX leads_activity_count ON leads (activity_count, id)",
    "CREATE INDEX leads_project_disposition_ci ON leads (project_id, lower(disposition), last_activity_at NULLS FIRST, id)",
    "CREATE INDEX tool_calls_time ON tool_calls (timestamp NULLS FIRST, activity_id, position)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS tool_calls_time",
    "DROP INDEX IF EXISTS leads_project_disposition_ci",
    "DROP INDEX IF EXISTS leads_activity_count",
    "DROP INDEX IF EXISTS leads_name",
    "DROP INDEX IF EXISTS leads_first_activity",
    "DROP INDEX IF EXISTS leads_summary_trgm",
    "DROP INDEX IF EXISTS analyses_summary_trgm",
    "DROP INDEX IF EXISTS messages_content_trgm",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_UP,
            DbBackend::Postgres => POSTGRES_UP,
            other => {
                return Err(DbErr::Migration(format!(
                    "leadql supports SQLite and PostgreSQL, not {other:?}"
                )))
            }
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        if manager.get_database_backend() == DbBackend::Sqlite {
            db.execute_unprepared(
                "CREATE INDEX tool_calls_time ON tool_calls (timestamp, activity_id, position)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_DOWN,
            _ => POSTGRES_DOWN,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        if manager.get_database_backend() == DbBackend::Sqlite {
            db.execute_unprepared("DROP INDEX IF EXISTS tool_calls_time")
                .await?;
        }
        Ok(())
    }
}
