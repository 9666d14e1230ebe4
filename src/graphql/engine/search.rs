//! `search`: case-insensitive substring search over transcript messages,
//! analysis summaries and lead summaries. One function per kind of row, each
//! with one branch per backend, so how text is found is decided here only.
//!
//! - SQLite: the FTS5 trigram index `search_text` over `search_documents`
//!   (kept by triggers, see the second migration); a phrase query there is
//!   a substring match.
//! - PostgreSQL: ILIKE, served by pg_trgm GIN indexes on the columns.
//!
//! Trigram indexes need three characters; shorter terms scan.

use super::filter::{like, like_pattern, Against};
use entity::{activity, analysis, conversation, lead, message};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, DbBackend, IntoSimpleExpr};

/// How a term is looked up.
enum Lookup<'a> {
    /// No term: matches everything.
    Everything,
    /// The FTS5 trigram index (SQLite, three characters or more).
    Index(String),
    /// A substring match on the column (PostgreSQL: index-backed).
    Like(&'a str),
}

fn lookup(text: &str, backend: DbBackend) -> Lookup<'_> {
    let text = text.trim();
    if text.is_empty() {
        Lookup::Everything
    } else if backend == DbBackend::Sqlite && text.chars().count() >= 3 {
        Lookup::Index(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Lookup::Like(text)
    }
}

/// `SELECT <column> FROM search_documents WHERE kind IN kinds AND <phrase>`.
fn documents(column: &'static str, kinds: &[&str], phrase: &str) -> SelectStatement {
    let kinds = kinds
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Query::select()
        .expr(Expr::cust(column))
        .from("search_documents")
        .and_where(Expr::cust(format!("kind IN ({kinds})")))
        .and_where(Expr::cust_with_values(
            "id IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)",
            [phrase.to_string()],
        ))
        .to_owned()
}

fn contains(col: impl IntoSimpleExpr, text: &str, backend: DbBackend) -> Expr {
    like(
        col.into_simple_expr(),
        like_pattern("%", text, "%"),
        backend,
    )
}

/// `SELECT <id> FROM messages WHERE content contains text`.
fn messages_with(id: message::Column, text: &str, backend: DbBackend) -> SelectStatement {
    Query::select()
        .column(id)
        .from(message::Entity)
        .and_where(contains(message::Column::Content, text, backend))
        .to_owned()
}

/// Leads whose summary, any analysis summary or any transcript message
/// contains the text.
pub fn leads(text: &str, at: Against) -> Condition {
    let backend = at.backend;
    match lookup(text, backend) {
        Lookup::Everything => Condition::all(),
        Lookup::Index(phrase) => Condition::all().add(lead::Column::Id.in_subquery(documents(
            "lead_id",
            &["m", "a", "l"],
            &phrase,
        ))),
        Lookup::Like(text) => {
            let analyses = Query::select()
                .column(analysis::Column::LeadId)
                .from(analysis::Entity)
                .and_where(contains(analysis::Column::Summary, text, backend))
                .to_owned();
            Condition::any()
                .add(contains(lead::Column::Summary, text, backend))
                .add(lead::Column::Id.in_subquery(analyses))
                .add(lead::Column::Id.in_subquery(messages_with(
                    message::Column::LeadId,
                    text,
                    backend,
                )))
        }
    }
}

/// Activities whose analysis summary or transcript contains the text.
pub fn activities(text: &str, at: Against) -> Condition {
    let backend = at.backend;
    match lookup(text, backend) {
        Lookup::Everything => Condition::all(),
        Lookup::Index(phrase) => Condition::all().add(activity::Column::Id.in_subquery(documents(
            "activity_id",
            &["m", "a"],
            &phrase,
        ))),
        Lookup::Like(text) => {
            let analyses = Query::select()
                .column(analysis::Column::ActivityId)
                .from(analysis::Entity)
                .and_where(contains(analysis::Column::Summary, text, backend))
                .to_owned();
            Condition::any()
                .add(activity::Column::Id.in_subquery(analyses))
                .add(activity::Column::Id.in_subquery(messages_with(
                    message::Column::ActivityId,
                    text,
                    backend,
                )))
        }
    }
}

/// Conversations with a transcript message containing the text.
pub fn conversations(text: &str, at: Against) -> Condition {
    let backend = at.backend;
    match lookup(text, backend) {
        Lookup::Everything => Condition::all(),
        Lookup::Index(phrase) => Condition::all().add(
            conversation::Column::ActivityId.in_subquery(documents("activity_id", &["m"], &phrase)),
        ),
        Lookup::Like(text) => {
            Condition::all().add(conversation::Column::ActivityId.in_subquery(messages_with(
                message::Column::ActivityId,
                text,
                backend,
            )))
        }
    }
}

/// Analyses whose summary contains the text.
pub fn analyses(text: &str, at: Against) -> Condition {
    let backend = at.backend;
    match lookup(text, backend) {
        Lookup::Everything => Condition::all(),
        Lookup::Index(phrase) => Condition::all().add(
            analysis::Column::ActivityId.in_subquery(documents("activity_id", &["a"], &phrase)),
        ),
        Lookup::Like(text) => {
            Condition::all().add(contains(analysis::Column::Summary, text, backend))
        }
    }
}
