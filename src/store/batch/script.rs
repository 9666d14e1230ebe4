//! A batch's write statements, sent to the database together.

use sea_orm::sea_query::{
    MysqlQueryBuilder, OnConflict, PostgresQueryBuilder, QueryStatementWriter, SqliteQueryBuilder,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryTrait,
};

/// Most rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 500;

/// Write statements rendered with their values inline (escaped by
/// sea-query) and sent together in one round trip.
pub(super) struct Script {
    pub(super) backend: DbBackend,
    sql: String,
}

impl Script {
    pub(super) fn new(backend: DbBackend) -> Self {
        Script {
            backend,
            sql: String::new(),
        }
    }

    /// A statement sea-query does not build (a lock, a NOTIFY).
    pub(super) fn push_sql(&mut self, sql: &str) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
    }

    pub(super) fn push(&mut self, statement: impl QueryStatementWriter) {
        let sql = match self.backend {
            DbBackend::Postgres => statement.to_string(PostgresQueryBuilder),
            DbBackend::Sqlite => statement.to_string(SqliteQueryBuilder),
            _ => statement.to_string(MysqlQueryBuilder),
        };
        self.sql.push_str(&sql);
        self.sql.push_str(";\n");
    }

    /// Delete the rows of `E` that belong to the given activities.
    pub(super) fn delete_parts<E: EntityTrait>(
        &mut self,
        activity_id: E::Column,
        activities: &[&str],
    ) {
        self.push(
            E::delete_many()
                .filter(activity_id.is_in(activities.iter().copied()))
                .into_query(),
        );
    }

    /// Multi-row inserts of `rows`, `ROWS_PER_INSERT` at a time.
    pub(super) fn insert<E, A>(&mut self, rows: Vec<A>, on_conflict: Option<OnConflict>)
    where
        E: EntityTrait<ActiveModel = A>,
        A: ActiveModelTrait<Entity = E> + Send,
    {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let mut insert = E::insert_many(chunk);
            if let Some(on_conflict) = &on_conflict {
                insert = insert.on_conflict(on_conflict.clone());
            }
            self.push(insert.into_query());
        }
    }

    pub(super) async fn execute(self, txn: &impl ConnectionTrait) -> Result<(), DbErr> {
        if !self.sql.is_empty() {
            txn.execute_unprepared(&self.sql).await?;
        }
        Ok(())
    }
}
