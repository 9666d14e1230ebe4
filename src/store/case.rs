//! How text compares ignoring case, the same in SQLite, PostgreSQL and in
//! memory (live events): each character is replaced by its Unicode
//! lowercase, one character for one (`É` → `é`, `İ` → `i`, `ẞ` → `ß`,
//! `Σ` → `σ`, never a final `ς`), with no language rules and no other
//! folding (`ß` is not `ss`, `ı` is not `I`).
//!
//! - In memory: [`fold`].
//! - SQLite: its own `lower()` and `LIKE` fold ASCII only, so leadql adds
//!   `leadql_lower(text)`, [`fold`] as an SQL function, to every
//!   connection (an index on it needs the function to write: a tool that
//!   opens the file without leadql can read it but not change leads).
//! - PostgreSQL: `lower()` and `ILIKE` under the database's UTF-8 locale
//!   (glibc's `C.UTF-8`, `en_US.UTF-8`, … do exactly this). A database with
//!   a non-UTF-8 (e.g. `C`) locale folds ASCII only; [`check_postgres`]
//!   says so at start.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::ffi::{c_char, c_int, c_void};

/// The SQLite function: `leadql_lower(text)`.
pub const SQLITE_FUNCTION: &str = "leadql_lower";

/// `text` with each character replaced by its lowercase.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // The one character whose lowercase is two characters
            // (i + combining dot above); databases map it to `i`.
            '\u{130}' => out.push('i'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The SQLite implementation of `leadql_lower`: NULL for NULL, text for
/// anything else.
unsafe extern "C" fn sqlite_lower(
    ctx: *mut libsqlite3_sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut libsqlite3_sys::sqlite3_value,
) {
    use libsqlite3_sys as ffi;
    if argc != 1 {
        return;
    }
    // SAFETY: SQLite passes `argc` valid values; the text pointer is valid
    // for `bytes` bytes until the value is changed, which it is not here.
    unsafe {
        let value = *argv;
        if ffi::sqlite3_value_type(value) == ffi::SQLITE_NULL {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let text = ffi::sqlite3_value_text(value);
        let bytes = ffi::sqlite3_value_bytes(value);
        if text.is_null() || bytes < 0 {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let slice = std::slice::from_raw_parts(text, bytes as usize);
        let folded = fold(&String::from_utf8_lossy(slice));
        // SQLITE_TRANSIENT: SQLite copies the text before this returns.
        ffi::sqlite3_result_text(
            ctx,
            folded.as_ptr() as *const c_char,
            folded.len() as c_int,
            ffi::SQLITE_TRANSIENT(),
        );
    }
}

/// Add `leadql_lower` to a SQLite connection (deterministic, so indexes
/// may use it).
///
/// # Safety
/// `db` must be an open connection handle that no other thread uses
/// during the call.
pub unsafe fn register_sqlite(db: *mut libsqlite3_sys::sqlite3) -> Result<(), String> {
    use libsqlite3_sys as ffi;
    let name = std::ffi::CString::new(SQLITE_FUNCTION).map_err(|e| e.to_string())?;
    // SAFETY: the caller holds `db` open and to itself (see above); the
    // function pointer lives for the whole program.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            name.as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
            std::ptr::null_mut::<c_void>(),
            Some(sqlite_lower),
            None,
            None,
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!(
            "SQLite refused the function {SQLITE_FUNCTION} (code {rc})"
        ))
    }
}

/// Warn when PostgreSQL's `lower()` does not fold non-ASCII letters (a
/// database with a non-UTF-8 locale): case-insensitive filters then match
/// only ASCII letters ignoring case.
pub async fn check_postgres(db: &DatabaseConnection) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let probe = "ÉİẞΣ";
    let sql = format!("SELECT lower('{probe}') AS folded");
    let folded = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<String>("", "folded").ok());
    if folded.as_deref() != Some(fold(probe).as_str()) {
        tracing::warn!(
            got = ?folded,
            expected = %fold(probe),
            "PostgreSQL's lower() does not fold non-ASCII letters (the database's locale is not UTF-8): case-insensitive filters will ignore the case of ASCII letters only; create the database with a UTF-8 locale, e.g. C.UTF-8"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn each_character_becomes_its_lowercase() {
        assert_eq!(fold("ÉCOLE Straße"), "école straße");
        assert_eq!(fold("İSTANBUL ıI"), "istanbul ıi");
        assert_eq!(fold("ẞ ΣΑΣ"), "ß σασ");
        assert_eq!(fold("रुचि है"), "रुचि है");
        assert_eq!(fold("ABC xyz 123"), "abc xyz 123");
    }
}
