//! The database: connecting (SQLite or PostgreSQL) and migrating, ingest's
//! writes ([`apply_batch`]), reprojection, the rejected-deliveries log, the
//! case rule ([`case`]), and the read handles the API uses ([`read`] scopes
//! them to a caller, [`held`] keeps one connection per request). The API's
//! queries are built in `graphql::engine`; the feeds read events in
//! `feed`, the API keys in `access`.

mod batch;
pub mod case;
pub mod held;
mod nodelay;
pub mod projection;
pub mod read;
mod reproject;

pub use batch::{apply_batch, BatchResult, Mode, Status};
pub use reproject::{reproject, ReprojectSummary};

use entity::rejected_delivery;
use migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, NotSet,
    Set,
};
use std::time::Duration;

/// Open the database named by `url` (SQLite or PostgreSQL).
///
/// SQLite runs in WAL mode with `synchronous = FULL`, so a committed
/// delivery survives a power cut, and waits for locks instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, None).await
}

/// Connections in the pool when not configured: SQLite runs each
/// connection on a thread of its own, so a few more than the cores;
/// PostgreSQL can use more, as queries wait on the server.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        8
    } else {
        16
    }
}

/// [`connect`] with a pool of `pool_size` connections (default:
/// [`default_pool_size`]).
pub async fn connect_with(url: &str, pool_size: Option<u32>) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        static SQLITE_SETUP: std::sync::Once = std::sync::Once::new();
        SQLITE_SETUP.call_once(without_memory_statistics);
    }
    let pool_size = pool_size.unwrap_or_else(|| default_pool_size(url)).max(2);
    let mut options = ConnectOptions::new(url.to_string());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: one more
        // round trip to PostgreSQL (or hand-off to SQLite's connection
        // thread) per statement. Ping only connections idle long enough to
        // have been dropped; a connection that breaks in use fails that
        // statement and is replaced.
        .test_before_acquire_if_idle_for(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        options
            .max_connections(pool_size)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .create_if_missing(true)
                    // Statement journals in memory, and a 32 MiB page cache so a
                    // batch's writes do not spill mid-transaction.
                    .pragma("temp_store", "memory")
                    .pragma("cache_size", "-32768")
                    // Checkpoints run in the background (see `spawn_checkpointer`);
                    // a writer only checkpoints itself if the WAL reaches 64 MiB.
                    .pragma("wal_autocheckpoint", "16384")
            })
            .map_sqlx_sqlite_pool_opts(|pool| {
                pool.after_connect(|conn, _meta| Box::pin(prepare_sqlite(conn)))
            });
    } else {
        options.max_connections(pool_size).min_connections(1);
        let port = url
            .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
            .map(|o| o.get_port())
            .unwrap_or(5432);
        options.map_sqlx_postgres_pool_opts(move |pool| {
            pool.after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    nodelay::apply(port);
                    Ok(())
                })
            })
        });
        if loopback_without_tls_choice(url, std::env::var_os("PGSSLMODE").is_some()) {
            options.map_sqlx_postgres_opts(|o| {
                o.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable)
            });
        }
    }
    Database::connect(options).await
}

/// Whether `url` names a PostgreSQL server on this machine (a loopback
/// address or a Unix socket) and says nothing of TLS (no `sslmode` in the
/// URL, no `PGSSLMODE`). Such a connection is made without TLS: nothing
/// crosses a network, and encrypting every statement and row cost a
/// fifth of the server's CPU per query. Any `sslmode` given is obeyed.
fn loopback_without_tls_choice(url: &str, pgsslmode_set: bool) -> bool {
    if url.contains("sslmode=") || pgsslmode_set {
        return false;
    }
    let Ok(opts) = url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>() else {
        return false;
    };
    let host = opts.get_host();
    host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Turn off SQLite's memory statistics, before its first connection.
///
/// SQLite counts every allocation under one process-wide mutex, which all
/// pooled connections (each on a thread of its own) contend for: copying a
/// page of rows out (sqlx copies every value) spent a sixth of the
/// server's CPU waiting on that lock. leadql never reads the statistics.
fn without_memory_statistics() {
    // SAFETY: sqlite3_config is called before SQLite is initialised (the
    // first connection) and only once; if it was initialised already, it
    // refuses with SQLITE_MISUSE and changes nothing.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
            0 as std::ffi::c_int,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        tracing::debug!(code = rc, "SQLite memory statistics stay on");
    }
}

/// Set up a new SQLite connection: leadql's case folding as the SQL
/// function `leadql_lower` (see [`case`]), and each statement planned
/// once, whatever values are bound to it.
///
/// Since 3.4x SQLite reads a bound `LIMIT ?` (and, with stat4, bound range
/// values) while planning, and then compiles the statement again every
/// time a new value is bound: every keyset page, as sea-query binds the
/// limit, was parsed and planned anew on each execution (15% of the
/// server's CPU in the query benchmark). The plans here come from the
/// indexes, not from the values, so the query planner stability guarantee
/// (`SQLITE_DBCONFIG_ENABLE_QPSG`) costs nothing and keeps prepared
/// statements prepared.
async fn prepare_sqlite(
    conn: &mut sea_orm::sqlx::sqlite::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, locked for this call.
    unsafe { case::register_sqlite(db) }
        .map_err(|e| sea_orm::sqlx::Error::Configuration(e.into()))?;
    // SAFETY: `db` is this connection's open handle, locked for this call;
    // the option takes an int and an optional out-pointer (null: unused).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLite refused SQLITE_DBCONFIG_ENABLE_QPSG (code {rc})").into(),
        ))
    }
}

/// Set `leadql_db_connections{state}`: the pool's idle and busy
/// connections, read when the metrics are scraped.
pub fn record_pool_metrics(db: &DatabaseConnection, metrics: &crate::telemetry::Metrics) {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
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
/// SQLite keeps only the per-index figures (`sqlite_stat1`): with the
/// value samples of `sqlite_stat4`, which this build of SQLite collects,
/// every statement with a bound range on an indexed column is planned
/// again on each execution — a tenth of the server's CPU in the query
/// benchmark, for plans no better.
pub async fn refresh_statistics(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
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

/// Apply every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
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
    use sea_orm::RuntimeErr;
    let sqlx = match err {
        // No connection could be made or taken (whatever the reason: a
        // misconfigured server is also one to retry later, not to lose).
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_ref()
        }
        _ => return false,
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

#[cfg(test)]
mod tests {
    use super::loopback_without_tls_choice;

    fn plain(url: &str) -> bool {
        loopback_without_tls_choice(url, false)
    }

    #[test]
    fn loopback_postgres_goes_without_tls_unless_told() {
        assert!(!loopback_without_tls_choice(
            "postgres://u@127.0.0.1/db",
            true
        ));
        assert!(plain("postgres://u@127.0.0.1:5432/db"));
        assert!(plain("postgres://u@localhost/db"));
        assert!(plain("postgres://u@[::1]:5432/db"));
        assert!(plain("postgres://u@%2Fvar%2Frun%2Fpostgresql/db"));
        assert!(!plain("postgres://u@db.example.com/db"));
        assert!(!plain("postgres://u@10.0.0.5/db"));
        assert!(!plain("postgres://u@127.0.0.1/db?sslmode=require"));
    }
}
