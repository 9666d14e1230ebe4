//! A batch's write statements, sent to the database in one round trip.
//!
//! On SQLite each statement takes all its rows as one JSON parameter and
//! reads them back with `jsonb_each`, so its text does not depend on the
//! rows: the whole script is one text (every statement present, with an
//! empty list where a batch has nothing for it), which SQLite parses once
//! per connection and keeps prepared; the connection's thread binds the
//! parameters statement by statement. Before, the rows were written into
//! the text, which SQLite parsed again for every batch: a sixth of the
//! ingest writer thread's time (`perf`), and more in `leadql import`'s
//! large batches.
//!
//! On PostgreSQL the rows stay in the text, as multi-row VALUES rendered
//! (and escaped) by sea-query, in one simple-protocol script. The same
//! JSON form measured no better there: prepared statements take a round
//! trip each (a batch has about fifteen), and a JSON literal per statement
//! cost PostgreSQL about a tenth more CPU over HTTP's small batches than
//! parsing their VALUES (see the README's ingest section).

use entity::delivery;
use sea_orm::sea_query::{
    Expr, ExprTrait, OnConflict, PostgresQueryBuilder, QueryStatementWriter, Value,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic,
    Iterable, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter, QueryTrait, Statement,
};
use std::fmt::Write;

/// What an insert does with a row whose `key` is already stored.
pub(super) enum Conflict<C: 'static> {
    /// Nothing: no such row can exist.
    None,
    /// Keep the stored row.
    Ignore(C),
    /// Replace every other column with the new row's.
    Replace(C),
    /// Add the new row's `counts` to the stored row's.
    Add(C, &'static [C]),
}

/// Most rows per multi-row INSERT (PostgreSQL).
const ROWS_PER_INSERT: usize = 500;

/// One statement: its text and its one list of rows (None for a statement
/// without parameters).
struct Part {
    sql: String,
    rows: Option<Rows>,
}

/// Rows as a JSON array of arrays (a row's columns by position).
struct Rows {
    json: String,
    count: usize,
}

impl Rows {
    fn new() -> Self {
        Rows {
            json: String::from("["),
            count: 0,
        }
    }

    fn next(&mut self) {
        if self.count > 0 {
            self.json.push(',');
        }
        self.count += 1;
    }

    fn finish(mut self) -> Self {
        self.json.push(']');
        self
    }
}

pub(super) struct Script {
    pub(super) backend: DbBackend,
    parts: Vec<Part>,
}

impl Script {
    pub(super) fn new(backend: DbBackend) -> Self {
        Script {
            backend,
            parts: Vec::new(),
        }
    }

    /// A statement without parameters (a lock, a NOTIFY).
    pub(super) fn push_sql(&mut self, sql: &str) {
        self.parts.push(Part {
            sql: sql.to_string(),
            rows: None,
        });
    }

    /// A statement rendered by sea-query with its values inline
    /// (PostgreSQL).
    fn push_inline(&mut self, statement: impl QueryStatementWriter) {
        self.push_sql(&statement.to_string(PostgresQueryBuilder));
    }

    /// Insert `rows` into `E`. Every column is written but an
    /// auto-increment key, which the database assigns.
    pub(super) fn insert<E, A>(&mut self, rows: Vec<A>, conflict: Conflict<E::Column>)
    where
        E: EntityTrait<ActiveModel = A>,
        A: ActiveModelTrait<Entity = E> + Send,
    {
        let generated: Vec<E::Column> = if <E::PrimaryKey as PrimaryKeyTrait>::auto_increment() {
            E::PrimaryKey::iter().map(|k| k.into_column()).collect()
        } else {
            Vec::new()
        };
        let columns: Vec<E::Column> = E::Column::iter()
            .filter(|c| !generated.iter().any(|g| g.as_str() == c.as_str()))
            .collect();
        if self.backend == DbBackend::Postgres {
            let on_conflict = on_conflict::<E>(&columns, &conflict);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
                let mut insert = E::insert_many(chunk);
                if let Some(on_conflict) = &on_conflict {
                    insert = insert.on_conflict(on_conflict.clone());
                }
                self.push_inline(insert.into_query());
            }
            return;
        }
        let table = E::default().table_name().to_string();
        let quoted = |c: &E::Column| format!("\"{}\"", c.as_str());
        let names: Vec<String> = columns.iter().map(quoted).collect();
        let read: Vec<String> = (0..columns.len())
            .map(|i| format!("r.value ->> {i}"))
            .collect();
        // `WHERE true`: SQLite would read an upsert's ON as a join's.
        let mut sql = format!(
            "INSERT INTO \"{table}\" ({}) SELECT {} FROM jsonb_each(?) AS r WHERE true",
            names.join(", "),
            read.join(", "),
        );
        let (key, set): (_, Vec<String>) = match conflict {
            Conflict::None => (None, Vec::new()),
            Conflict::Ignore(key) => (Some(key), Vec::new()),
            Conflict::Replace(key) => (
                Some(key),
                columns
                    .iter()
                    .filter(|c| c.as_str() != key.as_str())
                    .map(|c| format!("{0} = excluded.{0}", quoted(c)))
                    .collect(),
            ),
            Conflict::Add(key, counts) => (
                Some(key),
                counts
                    .iter()
                    .map(|c| format!("{0} = \"{table}\".{0} + excluded.{0}", quoted(c)))
                    .collect(),
            ),
        };
        if let Some(key) = key {
            let _ = write!(sql, " ON CONFLICT ({}) DO ", quoted(&key));
            if set.is_empty() {
                sql.push_str("NOTHING");
            } else {
                let _ = write!(sql, "UPDATE SET {}", set.join(", "));
            }
        }
        let mut json = Rows::new();
        for row in rows {
            json.next();
            json.json.push('[');
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    json.json.push(',');
                }
                push_value(&mut json.json, row.get(*column).into_value().as_ref());
            }
            json.json.push(']');
        }
        self.parts.push(Part {
            sql,
            rows: Some(json.finish()),
        });
    }

    /// Delete the rows of `E` whose `column` is one of `keys` and whose
    /// `zero` column (if given) is 0.
    pub(super) fn delete_in<E: EntityTrait>(
        &mut self,
        column: E::Column,
        keys: &[&str],
        zero: Option<E::Column>,
    ) {
        if self.backend == DbBackend::Postgres {
            if !keys.is_empty() {
                let mut delete = E::delete_many().filter(column.is_in(keys.iter().copied()));
                if let Some(zero) = zero {
                    delete = delete.filter(zero.eq(0));
                }
                self.push_inline(delete.into_query());
            }
            return;
        }
        let table = E::default().table_name().to_string();
        let mut sql = format!(
            "DELETE FROM \"{table}\" WHERE \"{}\" IN (SELECT value FROM json_each(?))",
            column.as_str()
        );
        if let Some(zero) = zero {
            let _ = write!(sql, " AND \"{}\" = 0", zero.as_str());
        }
        let mut json = Rows::new();
        for key in keys {
            json.next();
            push_json_string(&mut json.json, key);
        }
        self.parts.push(Part {
            sql,
            rows: Some(json.finish()),
        });
    }

    /// Add `count` to the repeat count of each logged body `hash`.
    pub(super) fn add_repeats(&mut self, repeats: &[(&str, i32)]) {
        if self.backend == DbBackend::Postgres {
            for (hash, count) in repeats {
                self.push_inline(
                    delivery::Entity::update_many()
                        .col_expr(
                            delivery::Column::DuplicateCount,
                            Expr::col(delivery::Column::DuplicateCount).add(*count),
                        )
                        .filter(delivery::Column::BodyHash.eq(*hash))
                        .into_query(),
                );
            }
            return;
        }
        let mut json = Rows::new();
        for (hash, count) in repeats {
            json.next();
            json.json.push('[');
            push_json_string(&mut json.json, hash);
            let _ = write!(json.json, ",{count}]");
        }
        self.parts.push(Part {
            sql: "UPDATE \"deliveries\" SET \"duplicate_count\" = \"duplicate_count\" + (r.value ->> 1) \
                  FROM json_each(?) AS r WHERE \"body_hash\" = r.value ->> 0"
                .to_string(),
            rows: Some(json.finish()),
        });
    }

    pub(super) async fn execute(self, txn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut sql = String::new();
        let mut values = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            sql.push_str(&part.sql);
            sql.push_str(";\n");
            if let Some(rows) = part.rows {
                values.push(Value::from(rows.json));
            }
        }
        if !values.is_empty() {
            // SQLite: one text whatever the batch holds, so it stays
            // prepared; the parameters are bound statement by statement.
            txn.execute_raw(Statement::from_sql_and_values(self.backend, sql, values))
                .await?;
        } else if !sql.is_empty() {
            txn.execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}

/// The ON CONFLICT clause of a PostgreSQL insert of `columns`.
fn on_conflict<E: EntityTrait>(
    columns: &[E::Column],
    conflict: &Conflict<E::Column>,
) -> Option<OnConflict> {
    match conflict {
        Conflict::None => None,
        Conflict::Ignore(key) => Some(OnConflict::column(*key).do_nothing().to_owned()),
        Conflict::Replace(key) => Some(
            OnConflict::column(*key)
                .update_columns(
                    columns
                        .iter()
                        .copied()
                        .filter(|c| c.as_str() != key.as_str()),
                )
                .to_owned(),
        ),
        Conflict::Add(key, counts) => {
            let mut upsert = OnConflict::column(*key);
            for column in *counts {
                let stored = Expr::col((E::default(), *column));
                upsert.value(
                    *column,
                    stored.add(Expr::cust(format!("excluded.{}", column.as_str()))),
                );
            }
            Some(upsert)
        }
    }
}

/// `value` as JSON. A JSON column goes in as its text, which SQLite
/// stores (byte for byte as before).
fn push_value(out: &mut String, value: Option<&Value>) {
    let Some(value) = value else {
        out.push_str("null");
        return;
    };
    match value {
        Value::Bool(Some(b)) => out.push_str(if *b { "true" } else { "false" }),
        Value::TinyInt(Some(n)) => push_display(out, n),
        Value::SmallInt(Some(n)) => push_display(out, n),
        Value::Int(Some(n)) => push_display(out, n),
        Value::BigInt(Some(n)) => push_display(out, n),
        Value::TinyUnsigned(Some(n)) => push_display(out, n),
        Value::SmallUnsigned(Some(n)) => push_display(out, n),
        Value::Unsigned(Some(n)) => push_display(out, n),
        Value::BigUnsigned(Some(n)) => push_display(out, n),
        Value::Float(Some(n)) if n.is_finite() => push_display(out, n),
        Value::Double(Some(n)) if n.is_finite() => push_display(out, n),
        Value::String(Some(s)) => push_json_string(out, s),
        Value::Json(Some(json)) => {
            push_json_string(out, &serde_json::to_string(json).unwrap_or_default())
        }
        // Every other kind is null here: none of the batch's columns is of
        // another kind (bytes, dates), and a missing value is null.
        _ => out.push_str("null"),
    }
}

fn push_display(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}
