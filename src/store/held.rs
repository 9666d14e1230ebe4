//! One pooled connection for all the statements of one GraphQL request.
//!
//! sqlx tests every connection it takes back into its pool (a round trip to
//! PostgreSQL, a hand-off to SQLite's connection thread) and returns it on
//! a task of its own. Taking a connection per statement, a lead's history
//! (seven statements) paid for seven of those; holding one connection for
//! the request pays once. The connection is taken at the request's first
//! statement and goes back when the request's last handle is dropped.
//!
//! A request's connection then goes to a short list of spares for the next
//! request instead of back into sqlx's pool (which would test it again):
//! a request that finds a spare pays no test at all. A spare idle for
//! longer than [`SPARE_IDLE`] goes back to the pool (which tests it), and a
//! connection whose statement failed or was cancelled is never kept.
//!
//! Statements of one request run one at a time on it (the fields of one
//! level ask together and are batched by the loader, so there is little to
//! run side by side); a request never waits for a second connection, so
//! requests cannot deadlock on the pool.

use sea_orm::sqlx::{self, pool::PoolConnection, Postgres, Sqlite};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A database handle: the pool, or one connection of it held for a
/// request. Writes and unprepared statements always go to the pool.
#[derive(Clone)]
pub struct ReadDb {
    pool: DatabaseConnection,
    held: Option<Arc<Slot>>,
}

/// Connections kept between requests, most recently used last.
#[derive(Clone)]
pub struct Spares {
    kept: Arc<std::sync::Mutex<Vec<(Held, Instant)>>>,
    max: usize,
}

/// The most spare connections kept (the rest go back to the pool): at
/// most half the pool, so ingest always finds connections.
const MAX_SPARES: usize = 8;
/// A spare idle longer than this goes back to the pool, which tests it.
const SPARE_IDLE: Duration = Duration::from_secs(10);

impl Spares {
    /// Spares for `pool`'s connections.
    pub fn for_pool(pool: &DatabaseConnection) -> Self {
        let pool_size = match pool.get_database_backend() {
            DbBackend::Postgres => pool
                .get_postgres_connection_pool()
                .options()
                .get_max_connections(),
            _ => pool
                .get_sqlite_connection_pool()
                .options()
                .get_max_connections(),
        } as usize;
        Spares {
            kept: Arc::default(),
            max: MAX_SPARES.min(pool_size / 2),
        }
    }

    fn take(&self) -> Option<Held> {
        let mut spares = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        // Stale ones are dropped here: back to sqlx's pool, which tests
        // them before the next use.
        spares.retain(|(_, since)| since.elapsed() < SPARE_IDLE);
        spares.pop().map(|(held, _)| held)
    }

    fn keep(&self, held: Held) {
        let mut spares = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < self.max {
            spares.push((held, Instant::now()));
        }
    }
}

/// One request's connection, taken at its first statement.
struct Slot {
    conn: Mutex<Option<Held>>,
    /// No statement is half done on the connection.
    clean: AtomicBool,
    spares: Spares,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(held) = self.conn.get_mut().take() {
            if *self.clean.get_mut() {
                self.spares.keep(held);
            }
            // Otherwise it goes back to sqlx's pool, which tests it (and
            // reads what a cancelled statement left) before reuse.
        }
    }
}

enum Held {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

impl ReadDb {
    /// Run `stmt` on the held connection or the pool (its first row only
    /// if `one`), in a trace span that says how many rows it returned.
    async fn query(&self, stmt: Statement, one: bool) -> Result<Vec<QueryResult>, DbErr> {
        let mut span = crate::otel::statement(
            self.get_database_backend(),
            &stmt.sql,
            crate::telemetry::operation_context(),
        );
        let rows = match (&self.held, one) {
            (None, true) => self.pool.query_one_raw(stmt).await.map(Vec::from_iter),
            (None, false) => self.pool.query_all_raw(stmt).await,
            (Some(held), one) => self.fetch(held, stmt, one).await,
        };
        let rows = rows.inspect_err(|err| span.failed(err))?;
        span.rows(rows.len());
        Ok(rows)
    }

    /// Every statement on a connection of its own from the pool (for
    /// long-lived readers such as subscriptions).
    pub fn pooled(pool: DatabaseConnection) -> Self {
        ReadDb { pool, held: None }
    }

    /// One connection for all statements, taken when first needed: a
    /// spare if there is one, else from the pool.
    pub fn held(pool: DatabaseConnection, spares: Spares) -> Self {
        ReadDb {
            pool,
            held: Some(Arc::new(Slot {
                conn: Mutex::new(None),
                clean: AtomicBool::new(true),
                spares,
            })),
        }
    }

    /// SQLite or PostgreSQL (without `ConnectionTrait` in scope).
    pub fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    /// Run `stmt` on the request's connection: its first row if `one`,
    /// else all its rows.
    async fn fetch(
        &self,
        held: &Slot,
        stmt: Statement,
        one: bool,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let mut slot = held.conn.lock().await;
        if slot.is_none() {
            *slot = Some(match held.spares.take() {
                Some(spare) => spare,
                None => match self.pool.get_database_backend() {
                    DbBackend::Postgres => Held::Postgres(
                        self.pool
                            .get_postgres_connection_pool()
                            .acquire()
                            .await
                            .map_err(acquire_error)?,
                    ),
                    _ => Held::Sqlite(
                        self.pool
                            .get_sqlite_connection_pool()
                            .acquire()
                            .await
                            .map_err(acquire_error)?,
                    ),
                },
            });
        }
        crate::telemetry::count_held_statement();
        let mut stmt = stmt;
        if matches!(slot.as_ref(), Some(Held::Postgres(_))) {
            inline_limit(&mut stmt);
        }
        let values = SqlxValues(stmt.values.take().unwrap_or(sea_orm::Values(Vec::new())));
        let query = sqlx::AssertSqlSafe(stmt.sql.as_str());
        // Until the rows are all read: if this future is dropped midway
        // (the request timed out), the connection is not kept as a spare.
        held.clean.store(false, Ordering::Relaxed);
        // The same for both drivers; only the connection's type differs.
        macro_rules! run_on {
            ($conn:expr) => {{
                let q = sqlx::query_with(query, values);
                if one {
                    q.fetch_optional(&mut **$conn)
                        .await
                        .map(|r| r.into_iter().map(QueryResult::from).collect())
                } else {
                    q.fetch_all(&mut **$conn)
                        .await
                        .map(|r| r.into_iter().map(QueryResult::from).collect())
                }
            }};
        }
        let rows: Result<Vec<QueryResult>, sqlx::Error> = match slot.as_mut() {
            Some(Held::Postgres(conn)) => run_on!(conn),
            Some(Held::Sqlite(conn)) => run_on!(conn),
            None => unreachable!("the connection was taken above"),
        };
        match rows {
            Ok(rows) => {
                held.clean.store(true, Ordering::Relaxed);
                Ok(rows)
            }
            Err(err) => {
                // A connection that failed is not trusted with the next
                // statement: the next one takes a fresh connection, and
                // this one goes back to the pool, which tests it.
                if !matches!(
                    err,
                    sqlx::Error::Database(_) | sqlx::Error::ColumnDecode { .. }
                ) {
                    *slot = None;
                }
                held.clean.store(true, Ordering::Relaxed);
                Err(DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
            }
        }
    }
}

/// Write a statement's trailing `LIMIT $n` as a number.
///
/// PostgreSQL plans a prepared statement anew on each execution while that
/// looks cheaper than its generic plan, and a generic plan with an unknown
/// LIMIT is costed for a tenth of the rows: every keyset page was planned
/// again (a third of PostgreSQL's CPU on the page query). With the number
/// in the text the generic plan costs what the custom one does, so
/// PostgreSQL keeps it after a few executions. Page sizes are few, so few
/// texts.
fn inline_limit(stmt: &mut Statement) {
    let Some(values) = stmt.values.as_mut() else {
        return;
    };
    let suffix = format!(" LIMIT ${}", values.0.len());
    if !stmt.sql.ends_with(&suffix) {
        return;
    }
    let limit = match values.0.last() {
        Some(sea_orm::Value::BigUnsigned(Some(n))) => n.to_string(),
        Some(sea_orm::Value::BigInt(Some(n))) if *n >= 0 => n.to_string(),
        Some(sea_orm::Value::Unsigned(Some(n))) => n.to_string(),
        Some(sea_orm::Value::Int(Some(n))) if *n >= 0 => n.to_string(),
        _ => return,
    };
    values.0.pop();
    stmt.sql.truncate(stmt.sql.len() - suffix.len());
    stmt.sql.push_str(" LIMIT ");
    stmt.sql.push_str(&limit);
}

fn acquire_error(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for ReadDb {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.pool.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        Ok(self.query(stmt, true).await?.into_iter().next())
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.query(stmt, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    #[test]
    fn a_trailing_bound_limit_becomes_a_number() {
        let mut s = stmt(
            "SELECT a FROM t WHERE b = $1 ORDER BY a LIMIT $2",
            vec!["x".into(), 51u64.into()],
        );
        inline_limit(&mut s);
        assert_eq!(s.sql, "SELECT a FROM t WHERE b = $1 ORDER BY a LIMIT 51");
        assert_eq!(s.values.unwrap().0, vec![sea_orm::Value::from("x")]);
    }

    #[test]
    fn other_statements_are_left_alone() {
        for (sql, values) in [
            (
                "SELECT a FROM t WHERE b = $1",
                vec![sea_orm::Value::from(5u64)],
            ),
            // The limit is not the last value.
            (
                "SELECT a FROM t LIMIT $1 OFFSET $2",
                vec![1u64.into(), 2u64.into()],
            ),
            // A value that is no count.
            (
                "SELECT a FROM t LIMIT $1",
                vec![sea_orm::Value::from("7; DROP")],
            ),
            (
                "SELECT a FROM t LIMIT $1",
                vec![sea_orm::Value::from(-1i64)],
            ),
        ] {
            let mut s = stmt(sql, values.clone());
            inline_limit(&mut s);
            assert_eq!(s.sql, sql);
            assert_eq!(s.values.unwrap().0, values);
        }
    }
}
