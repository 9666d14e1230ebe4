//! SQLite: `activities` becomes an ordinary table with a rowid, its id a
//! unique index, instead of a table stored in its primary key's B-tree
//! (WITHOUT ROWID).
//!
//! A WITHOUT ROWID table keeps at most about a quarter of a page of a row
//! in the B-tree (1,002 bytes of a 4 KiB page) and the rest in overflow
//! pages, one chain per row. An activity carries its input, variables,
//! metadata and summaries, 1.5 KiB on average in generated data, so
//! nearly every activity had an overflow page of its own, mostly empty: at
//! 100,000 leads the table took 1,015 MB, 693 MB of it unused, and every
//! read of a row fetched two pages. As a rowid table the same rows take
//! 402 MB (and 11 MB for the id's index; the database 3,333 MB to 2,725
//! MB after `leadql import`), and an activity found through an index is
//! found by its rowid instead of a search of the text key: counting a
//! project's completed calls took 371 ms and now 88 ms over HTTP. The
//! other keyed tables' rows fit in their B-tree and stay as they are.
//!
//! SQLite cannot change this with ALTER TABLE, so the table is made again
//! (its own statement, with or without `WITHOUT ROWID`), its rows copied,
//! the old table dropped, the new one renamed, and its indexes made again,
//! in one transaction. It takes a while on a large database (7 seconds at
//! 100,000 leads, 283,000 activities, on a 2-core machine); the space the
//! old table held stays in the file as free pages, which the database
//! reuses as it grows. PostgreSQL is unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261211_000015_sqlite_activities_rowid"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction, on one connection, on SQLite too: the table is
    /// never half copied.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, "activities", false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, "activities", true).await
    }
}

const WITHOUT_ROWID: &str = " WITHOUT ROWID";

/// Make `table` again with or without a rowid, with the same columns,
/// rows, indexes and triggers (SQLite only; nothing if it already is).
async fn rebuild(
    manager: &SchemaManager<'_>,
    table: &str,
    without_rowid: bool,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL \
             ORDER BY type = 'table' DESC, name",
            [table.into()],
        ))
        .await?;
    let mut schema = Vec::with_capacity(rows.len());
    for row in rows {
        schema.push((
            row.try_get::<String>("", "type")?,
            row.try_get::<String>("", "sql")?,
        ));
    }
    let Some((_, create)) = schema.iter().find(|(kind, _)| kind == "table") else {
        return Err(DbErr::Migration(format!("no table {table} to rebuild")));
    };
    let create = create.trim_end();
    let is_without_rowid = create.to_ascii_uppercase().ends_with(WITHOUT_ROWID);
    if is_without_rowid == without_rowid {
        return Ok(());
    }
    // `CREATE TABLE "activities" ( …columns… ) [WITHOUT ROWID]`: the
    // columns are kept as they are, under a new name.
    let columns = create
        .find('(')
        .map(|at| &create[at..])
        .ok_or_else(|| DbErr::Migration(format!("unexpected schema of {table}: {create}")))?;
    let columns = match is_without_rowid {
        true => &columns[..columns.len() - WITHOUT_ROWID.len()],
        false => columns,
    };
    let rebuilt = format!("{table}_rebuilt");
    let suffix = if without_rowid { WITHOUT_ROWID } else { "" };
    let mut statements = vec![
        format!("CREATE TABLE \"{rebuilt}\" {columns}{suffix}"),
        format!("INSERT INTO \"{rebuilt}\" SELECT * FROM \"{table}\""),
        format!("DROP TABLE \"{table}\""),
        format!("ALTER TABLE \"{rebuilt}\" RENAME TO \"{table}\""),
    ];
    // Its indexes and triggers, made again on the renamed table.
    statements.extend(
        schema
            .iter()
            .filter(|(kind, _)| kind != "table")
            .map(|(_, sql)| sql.clone()),
    );
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}
