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

use super::filter::{asked_of_each, like, like_pattern, Against};
use entity::{activity, analysis, conversation, lead, message};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, IntoColumnRef, IntoTableRef, Query, SelectStatement,
};
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

/// How a page can find the rows a term matches by walking its list in
/// order: `matching`, the distinct rows (their ids) with a matching
/// document, for a bounded count of them, and `probe`, the question asked
/// of each row as the walk passes it. The same documents as [`leads`] and
/// [`activities`] look up, so both give the same rows.
pub struct Walk {
    pub matching: SelectStatement,
    pub probe: Condition,
    /// The documents' column that names the walked row.
    column: &'static str,
}

impl Walk {
    /// Count only the matches among `rows` (a statement over the walked
    /// table, whose `id` names the row), asked of each match: listing
    /// `rows` first instead (`IN`) cost 138 ms for a project's 54,000
    /// activities at 100,000 leads, asking 23 ms.
    pub fn among(&mut self, mut rows: SelectStatement, id: impl IntoColumnRef) {
        let named = (Alias::new("search_documents"), Alias::new(self.column));
        rows.and_where(Expr::col(id).equals(named));
        self.matching.and_where(Expr::exists(rows));
    }
}

/// The [`Walk`] of the rows whose documents of `kinds` (naming their row
/// in `column`) `text` matches, where the text is looked up in SQLite's
/// index (elsewhere None: on PostgreSQL, counting even a bounded number
/// of matches reads every match of each trigram first).
fn walk(
    text: &str,
    at: Against,
    column: &'static str,
    kinds: &[&str],
    row: impl IntoColumnRef,
) -> Option<Walk> {
    let Lookup::Index(phrase) = lookup(text, at.backend) else {
        return None;
    };
    let mut docs = documents(column, kinds, &phrase);
    let matching = docs.clone().distinct().to_owned();
    let probe = docs
        .and_where(Expr::col((Alias::new("search_documents"), Alias::new(column))).equals(row))
        .to_owned();
    Some(Walk {
        matching,
        probe: Condition::all().add(Expr::exists(probe)),
        column,
    })
}

/// The [`Walk`] of the leads `text` matches (see [`leads`]).
pub fn lead_walk(text: &str, at: Against) -> Option<Walk> {
    walk(
        text,
        at,
        "lead_id",
        &["m", "a", "l"],
        (lead::Entity, lead::Column::Id),
    )
}

/// The [`Walk`] of the activities `text` matches (see [`activities`]).
pub fn activity_walk(text: &str, at: Against) -> Option<Walk> {
    let row = (activity::Entity, activity::Column::Id);
    walk(text, at, "activity_id", &["m", "a"], row)
}

/// `EXISTS (SELECT 1 FROM table WHERE owned AND col || '' contains text)`,
/// asked of each row of a walk ([`asked_of_each`]). No index matches
/// `col || ''`, so the planner reads the row's own few rows of `table` by
/// `owned` (its keys) rather than a trigram index for every row asked.
fn asked(
    table: impl IntoTableRef,
    owned: Expr,
    col: impl IntoSimpleExpr,
    text: &str,
    backend: DbBackend,
) -> Expr {
    let unindexed = Expr::cust_with_expr("$1 || ''", col.into_simple_expr());
    let rows = Query::select()
        .expr(Expr::val(1))
        .from(table)
        .and_where(owned)
        .and_where(contains(unindexed, text, backend))
        .to_owned();
    asked_of_each(rows, backend)
}

/// The text a probe asks each row for, matched with ILIKE: on PostgreSQL
/// only, as `col || ''` is written for it (see [`asked`]); SQLite's short
/// texts, which its index cannot look up, read the list. None also where
/// the text matches everything.
fn probed(text: &str, backend: DbBackend) -> Option<&str> {
    match (backend, lookup(text, backend)) {
        (DbBackend::Postgres, Lookup::Like(text)) => Some(text),
        _ => None,
    }
}

/// The question a page that walks the leads asks of each lead where the
/// text is matched with ILIKE (PostgreSQL, see `page::Reading::First`):
/// its summary, its analyses' summaries and its transcripts' messages,
/// found by the lead's keys. None on SQLite (where [`lead_walk`] serves
/// texts of three characters or more), or where the text matches
/// everything.
pub fn lead_probe(text: &str, at: Against) -> Option<Condition> {
    let backend = at.backend;
    let text = probed(text, backend)?;
    let this = (lead::Entity, lead::Column::Id);
    let calls = Query::select()
        .column((activity::Entity, activity::Column::Id))
        .from(activity::Entity)
        .and_where(Expr::col((activity::Entity, activity::Column::LeadId)).equals(this))
        .to_owned();
    let of_analyses = Expr::col((analysis::Entity, analysis::Column::LeadId)).equals(this);
    let of_calls = Expr::col((message::Entity, message::Column::ActivityId)).in_subquery(calls);
    Some(
        Condition::any()
            .add(contains(lead::Column::Summary, text, backend))
            .add(asked(
                analysis::Entity,
                of_analyses,
                analysis::Column::Summary,
                text,
                backend,
            ))
            .add(asked(
                message::Entity,
                of_calls,
                message::Column::Content,
                text,
                backend,
            )),
    )
}

/// The question a page that walks the activities asks of each activity
/// where the text is matched with ILIKE (see [`lead_probe`]).
pub fn activity_probe(text: &str, at: Against) -> Option<Condition> {
    let backend = at.backend;
    let text = probed(text, backend)?;
    let this = (activity::Entity, activity::Column::Id);
    let of_analysis = Expr::col((analysis::Entity, analysis::Column::ActivityId)).equals(this);
    let of_call = Expr::col((message::Entity, message::Column::ActivityId)).equals(this);
    Some(
        Condition::any()
            .add(asked(
                analysis::Entity,
                of_analysis,
                analysis::Column::Summary,
                text,
                backend,
            ))
            .add(asked(
                message::Entity,
                of_call,
                message::Column::Content,
                text,
                backend,
            )),
    )
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
