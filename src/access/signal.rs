//! How every instance learns at once that keys changed.
//!
//! `leadql keys create` and `revoke` change a key and, in the same
//! transaction, announce it: on PostgreSQL with a NOTIFY on
//! [`CHANNEL`] (delivered at commit to every instance's LISTEN
//! connection), on SQLite by counting up the database header's
//! `user_version` (which SQLite leaves to applications), so an instance
//! sees a change by reading one integer of the header: no table is read.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// The NOTIFY channel of key changes (PostgreSQL).
pub const CHANNEL: &str = "leadql_keys";

/// Tell every instance that the keys changed; call it inside the
/// transaction that changed them.
pub async fn announce(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, '')",
                [CHANNEL.into()],
            ))
            .await?;
        }
        _ => {
            // Inside the write transaction, so two concurrent changes
            // count up twice.
            let next = generation(db).await?.wrapping_add(1);
            db.execute_unprepared(&format!("PRAGMA user_version = {next}"))
                .await?;
        }
    }
    Ok(())
}

/// SQLite: the keys' generation, changed by every [`announce`]. Other
/// databases have none (0): they are told by NOTIFY.
pub async fn generation(db: &impl ConnectionTrait) -> Result<i32, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(0);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA user_version",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i32>(0)?,
        None => 0,
    })
}
