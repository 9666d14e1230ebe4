//! The database: connecting (SQLite or PostgreSQL) and migrating, ingest's
//! writes ([`apply_batch`]), reprojection, the rejected-deliveries log, the
//! case rule ([`case`]), and the read handles the API uses ([`read`] scopes
//! them to a caller, [`held`] keeps one connection per request). The API's
//! queries are built in `graphql::engine`; the feeds read events in
//! `feed`, the API keys in `access`.

mod batch;
pub mod callbacks;
pub mod case;
mod connect;
pub mod held;
mod nodelay;
pub mod projection;
pub mod read;
mod reproject;
pub mod retention;
pub mod rollup;

pub use batch::{apply_batch, BatchResult, Mode, Status};
pub use connect::{
    connect, connect_reads, connect_rollups, connect_with, connect_writer, default_pool_size,
    read_statement_timeout, DEFAULT_SQLITE_CACHE_MIB, READ_APPLICATION, ROLLUP_APPLICATION,
};
pub use reproject::{reproject, ReprojectSummary};
pub use retention::{prune, spawn_retention, PruneSummary, Retention};

use entity::rejected_delivery;
use migration::MigratorTrait;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, NotSet, Set};
use std::time::Duration;

/// Set `leadql_db_connections{state}`: the idle and busy connections of
/// `pools`, added up, read when the metrics are scraped.
pub fn record_pool_metrics(pools: &[&DatabaseConnection], metrics: &crate::telemetry::Metrics) {
    let (size, idle) = pools
        .iter()
        .map(|db| match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        })
        .fold((0, 0), |(s, i), (size, idle)| (s + size, i + idle));
    let idle = idle as f64;
    metrics.record(|| {
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "state" => "idle").set(idle);
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "state" => "in_use")
            .set((size as f64 - idle).max(0.0));
    });
}

/// Refresh the query planner's statistics after a bulk load: `ANALYZE` on
/// SQLite; `VACUUM ANALYZE` on PostgreSQL, which also sets the visibility
/// map so aggregates can use index-only scans straight away instead of
/// waiting for autovacuum.
///
/// On PostgreSQL the rollups are first rewritten in the order their counts
/// read them ([`rollup::cluster`]).
///
/// SQLite keeps only the per-index figures (`sqlite_stat1`): with the
/// value samples of `sqlite_stat4`, which this build of SQLite collects,
/// every statement with a bound range on an indexed column is planned
/// again on each execution — a tenth of the server's CPU in the query
/// benchmark, for plans no better.
pub async fn refresh_statistics(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            rollup::cluster(db).await;
            db.execute_unprepared("VACUUM ANALYZE").await?;
        }
        _ => {
            db.execute_unprepared("ANALYZE").await?;
            if db
                .execute_unprepared("DELETE FROM sqlite_stat4")
                .await
                .is_ok()
            {
                db.execute_unprepared("ANALYZE sqlite_schema").await?;
            }
        }
    }
    Ok(())
}

/// Whether PostgreSQL's autovacuum is off, for the server or for the
/// activities table (false on SQLite, which has none).
pub async fn autovacuum_off(db: &DatabaseConnection) -> Result<bool, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(false);
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_setting('autovacuum') = 'off' OR EXISTS ( \
                 SELECT 1 FROM pg_class WHERE oid = to_regclass('activities') \
                 AND 'autovacuum_enabled=false' = ANY(reloptions)) AS off",
        ))
        .await?;
    match row {
        Some(row) => Ok(row.try_get::<Option<bool>>("", "off")? == Some(true)),
        None => Ok(false),
    }
}

/// Analyze the columns ingest looks its rows up by (on PostgreSQL, for
/// when autovacuum is off: see `ingest::pipeline::Upkeep`). Only these
/// columns: analyzing the whole database after an import of 30,000 leads
/// (95,000 payloads) took 3.3 s, these columns 0.4 s.
pub async fn analyze_lookup_columns(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared(
        "ANALYZE deliveries (body_hash), leads (id), \
         activities (id, lead_id), lead_updates (id), conversations (activity_id), \
         tool_calls (activity_id), messages (activity_id), \
         variables (activity_id, name, value_text), \
         analyses (activity_id), callbacks (id)",
    )
    .await?;
    Ok(())
}

/// On SQLite, copy the WAL back into the database file every quarter
/// second from a pool connection, so the ingest writer does not pay for
/// checkpoints on its own commits. PASSIVE never blocks readers or writers.
pub fn spawn_checkpointer(db: &DatabaseConnection) {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::debug!(error = %err, "background checkpoint failed");
            }
        }
    });
}

/// Apply every pending migration, then fill what a migration added empty
/// and only leadql can compute (the activity rollup).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await?;
    rollup::build_if_missing(db).await
}

/// Is the database answering?
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// Keep a body that could not be accepted, for inspection and replay.
pub async fn record_rejection(
    db: &DatabaseConnection,
    status: u16,
    error: &str,
    message: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<i64, DbErr> {
    let row = rejected_delivery::ActiveModel {
        id: NotSet,
        received_at: Set(now_ms()),
        status: Set(i32::from(status)),
        error: Set(error.to_string()),
        message: Set(message.to_string()),
        content_type: Set(content_type.map(str::to_string)),
        body: Set(body.to_vec()),
        replayed_at: Set(None),
    };
    Ok(row.insert(db).await?.id)
}

/// Wall-clock time in epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether a database error means "the database is unreachable or busy
/// for now" (so the sender should retry) rather than "this statement
/// failed". Decided from sqlx's error kinds and the database's own codes,
/// never from message text:
/// - no connection: none could be made or taken from the pool, or it
///   broke (I/O, TLS and protocol failures, a crashed SQLite worker);
/// - PostgreSQL SQLSTATE classes 08 (connection exception) and 53
///   (insufficient resources), and 57P01-57P03 (the server shutting down
///   or starting);
/// - SQLite result codes BUSY and LOCKED (another writer holds the file,
///   past the busy timeout), IOERR and CANTOPEN.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    // No connection could be made or taken (whatever the reason: a
    // misconfigured server is also one to retry later, not to lose).
    if matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    let Some(sqlx) = sqlx_error(err) else {
        return false;
    };
    match sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
            } else {
                // SQLite reports its extended result code; the primary
                // code is its low byte.
                let primary = code.parse::<i32>().unwrap_or_default() & 0xff;
                matches!(
                    primary,
                    libsqlite3_sys::SQLITE_BUSY
                        | libsqlite3_sys::SQLITE_LOCKED
                        | libsqlite3_sys::SQLITE_IOERR
                        | libsqlite3_sys::SQLITE_CANTOPEN
                )
            }
        }
        _ => false,
    }
}

/// Whether PostgreSQL refused a row because one of its values is too large
/// for an index entry (SQLSTATE 54000, "index row size … exceeds … maximum
/// 2704"): a few kilobytes of text from the payload that compress badly,
/// in an indexed column. Storing it again would fail again. SQLite has no
/// such limit.
pub fn is_too_large_to_index(err: &DbErr) -> bool {
    matches!(sqlx_error(err), Some(sea_orm::sqlx::Error::Database(db))
        if db.code().as_deref() == Some("54000")
            && db.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>().is_some())
}

/// The driver's error under a failed statement, if it came from the driver.
fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            Some(e.as_ref())
        }
        _ => None,
    }
}

/// Rejected deliveries not replayed yet, oldest first.
pub async fn pending_rejections(
    db: &DatabaseConnection,
) -> Result<Vec<rejected_delivery::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    rejected_delivery::Entity::find()
        .filter(rejected_delivery::Column::ReplayedAt.is_null())
        .order_by_asc(rejected_delivery::Column::Id)
        .all(db)
        .await
}

/// Mark a rejected delivery as replayed (now accepted).
pub async fn mark_replayed(db: &DatabaseConnection, id: i64) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    rejected_delivery::Entity::update_many()
        .col_expr(
            rejected_delivery::Column::ReplayedAt,
            sea_orm::sea_query::Expr::value(now_ms()),
        )
        .filter(rejected_delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
