//! Opening the database: the pool, SQLite's settings (WAL, full sync,
//! leadql's case folding, stable plans), PostgreSQL's (TCP_NODELAY, no TLS
//! on this machine unless asked).

use super::{case, nodelay};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::time::Duration;

/// Open the database named by `url` (SQLite or PostgreSQL).
///
/// SQLite runs in WAL mode with `synchronous = FULL`, so a committed
/// delivery survives a power cut, and waits for locks instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, None, DEFAULT_SQLITE_CACHE_MIB).await
}

/// SQLite's page cache per connection, MiB, when not configured: enough
/// for a batch's writes not to spill mid-transaction.
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 32;

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
/// [`default_pool_size`]) and, on SQLite, a page cache of
/// `sqlite_cache_mib` per connection (at least 1).
pub async fn connect_with(
    url: &str,
    pool_size: Option<u32>,
    sqlite_cache_mib: u32,
) -> Result<DatabaseConnection, DbErr> {
    let pool_size = pool_size.unwrap_or_else(|| default_pool_size(url)).max(2);
    open(url, pool_size, sqlite_cache_mib).await
}

/// The connections ingest's `writers` write through: on SQLite, a pool of
/// their own beside `db`; on PostgreSQL, `db` itself.
///
/// SQLite keeps a page cache per connection and drops all of it when a
/// transaction finds that another connection has written since. sqlx hands
/// out its idle connections in turn, so each batch of a shared pool ran on
/// a different connection from the last one, found its cache stale, and
/// read every page it touched back from the file (an eighth of the writer
/// threads' time in `pread` under HTTP ingest, spread over seven
/// connections). A writer's own connection finds its cache as it left it.
pub async fn connect_writer(
    db: &DatabaseConnection,
    url: &str,
    writers: usize,
    sqlite_cache_mib: u32,
) -> Result<DatabaseConnection, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return Ok(db.clone());
    }
    let writers = u32::try_from(writers).unwrap_or(u32::MAX).max(1);
    open(url, writers, sqlite_cache_mib).await
}

/// Connections for the statements that read the rollups: on PostgreSQL a
/// pool of [`ROLLUP_CONNECTIONS`] of their own, which plan each statement
/// once for any values (`plan_cache_mode = force_generic_plan`); on
/// SQLite, whose statements are planned once anyway (see
/// [`prepare_sqlite`]), `db` itself.
///
/// PostgreSQL plans a prepared statement for its values five times, and
/// then keeps a generic plan only if that is estimated no dearer. A
/// rollup statement's periods and a window's ragged ends are ranges of
/// unknown values, estimated at a share of the table that grows with it:
/// at 10,000 leads the generic plan won, at a million it never did, and
/// every count planned again (0.2 ms of a 0.8 ms `dispositionCounts`).
/// Whatever the values, these statements read ranges of one index, so the
/// generic plan is the right one; the rest of leadql's statements keep
/// PostgreSQL's choice, where the values can matter (a rare disposition).
pub async fn connect_rollups(
    db: &DatabaseConnection,
    url: &str,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let session = Session {
        plans: Plans::Generic,
        application: Some(ROLLUP_APPLICATION),
        statement_timeout: Some(read_statement_timeout(timeout)),
    };
    postgres_pool_beside(db, url, ROLLUP_CONNECTIONS, session).await
}

/// The connections GraphQL requests read through: on PostgreSQL a pool of
/// `pool_size` of their own, whose statements PostgreSQL stops once they
/// have run a second longer than `timeout` (the query timeout); on SQLite
/// `db` itself.
///
/// When a request runs past its timeout, leadql answers it with a timeout
/// error and drops its statement; but PostgreSQL does not notice a closed
/// connection until it has a row to send, so a count or a scan went on
/// for minutes (a short search term at 100,000 leads: a dozen statements
/// still running two minutes after their requests were answered, each a
/// core's worth, as retried requests piled up). `statement_timeout` bounds
/// them. Ingest, the feeds and upkeep (`ANALYZE`, `CLUSTER`, retention)
/// keep `db`, with no limit.
pub async fn connect_reads(
    db: &DatabaseConnection,
    url: &str,
    pool_size: Option<u32>,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let pool_size = pool_size.unwrap_or_else(|| default_pool_size(url)).max(2);
    let session = Session {
        plans: Plans::Chosen,
        application: Some(READ_APPLICATION),
        statement_timeout: Some(read_statement_timeout(timeout)),
    };
    postgres_pool_beside(db, url, pool_size, session).await
}

/// On PostgreSQL a pool of `pool_size` connections of its own, set up as
/// `session` says; on SQLite, `db` itself (each caller says why).
async fn postgres_pool_beside(
    db: &DatabaseConnection,
    url: &str,
    pool_size: u32,
    session: Session,
) -> Result<DatabaseConnection, DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(db.clone());
    }
    // The page-cache size is SQLite's: unused here.
    open_planned(url, pool_size, DEFAULT_SQLITE_CACHE_MIB, session).await
}

/// The `application_name` of [`connect_reads`]' connections.
pub const READ_APPLICATION: &str = "leadql reads";

/// How long PostgreSQL lets a read statement run: a second past the query
/// timeout, so leadql's own timeout answers first, with its clear error.
pub fn read_statement_timeout(query_timeout: Duration) -> Duration {
    query_timeout + Duration::from_secs(1)
}

/// Connections in [`connect_rollups`]' pool (PostgreSQL): each of its
/// statements takes well under a millisecond.
pub const ROLLUP_CONNECTIONS: u32 = 4;

/// The `application_name` of [`connect_rollups`]' connections, as
/// `pg_stat_activity` shows them.
pub const ROLLUP_APPLICATION: &str = "leadql rollups";

/// Open a pool of at most `pool_size` connections to `url`.
async fn open(
    url: &str,
    pool_size: u32,
    sqlite_cache_mib: u32,
) -> Result<DatabaseConnection, DbErr> {
    let session = Session {
        plans: Plans::Chosen,
        application: None,
        statement_timeout: None,
    };
    open_planned(url, pool_size, sqlite_cache_mib, session).await
}

/// What a PostgreSQL pool's sessions are set up with.
#[derive(Clone, Copy)]
struct Session {
    plans: Plans,
    /// `application_name`, as `pg_stat_activity` shows the connections.
    application: Option<&'static str>,
    /// `statement_timeout`: PostgreSQL stops a statement that runs longer.
    statement_timeout: Option<Duration>,
}

/// How PostgreSQL plans a pool's prepared statements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plans {
    /// PostgreSQL's own choice (`plan_cache_mode = auto`).
    Chosen,
    /// One generic plan per statement (`force_generic_plan`).
    Generic,
}

/// [`open`], with PostgreSQL's sessions set up as `session` says.
async fn open_planned(
    url: &str,
    pool_size: u32,
    sqlite_cache_mib: u32,
    session: Session,
) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        static SQLITE_SETUP: std::sync::Once = std::sync::Once::new();
        SQLITE_SETUP.call_once(without_memory_statistics);
    }
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
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .create_if_missing(true)
                    // Statement journals in memory, and a page cache (negative:
                    // KiB) so a batch's writes do not spill mid-transaction.
                    .pragma("temp_store", "memory")
                    .pragma(
                        "cache_size",
                        format!("-{}", u64::from(sqlite_cache_mib.max(1)) * 1024),
                    )
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
        let without_tls = loopback_without_tls_choice(url, std::env::var_os("PGSSLMODE").is_some());
        options.map_sqlx_postgres_opts(move |o| {
            let o = if without_tls {
                o.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable)
            } else {
                o
            };
            let o = match session.plans {
                Plans::Chosen => o,
                Plans::Generic => o.options([("plan_cache_mode", "force_generic_plan")]),
            };
            let o = match session.statement_timeout {
                Some(limit) => o.options([("statement_timeout", limit.as_millis().to_string())]),
                None => o,
            };
            match session.application {
                Some(name) => o.application_name(name),
                None => o,
            }
        });
    }
    Database::connect(options).await
}

/// Whether `url` names a PostgreSQL server on this machine (a loopback
/// address or a Unix socket) and says nothing of TLS (no `sslmode` in the
/// URL, no `PGSSLMODE`). Such a connection is made without TLS: nothing
/// crosses a network, and encrypting every statement and row only costs
/// both sides CPU. Any `sslmode` given is obeyed.
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

#[cfg(test)]
mod tests {
    use super::loopback_without_tls_choice;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// On SQLite the writers get a pool of their own, one connection per
    /// writer, on the same file as the shared pool (what one commits, the
    /// other reads); elsewhere they share the pool.
    #[tokio::test]
    async fn sqlite_writers_get_connections_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db?mode=rwc", dir.path().display());
        let db = super::connect_with(&url, Some(8), 1).await.unwrap();
        let writer = super::connect_writer(&db, &url, 1, 1).await.unwrap();
        let pool = writer.get_sqlite_connection_pool();
        assert_eq!(pool.options().get_max_connections(), 1);
        writer
            .execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)")
            .await
            .unwrap();
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT x FROM t"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 7);
        // Leads are sharded over the writers: each has a connection.
        let two = super::connect_writer(&db, &url, 2, 1).await.unwrap();
        assert_eq!(
            two.get_sqlite_connection_pool()
                .options()
                .get_max_connections(),
            2
        );
    }

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
