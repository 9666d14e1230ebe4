//! `search`: case-insensitive substring search over lead summaries,
//! analysis summaries and transcript messages. Each kind of row has one
//! function here, so how a backend finds text is decided in one place.

use super::filter::{like, like_pattern};
use entity::{activity, analysis, conversation, lead, message};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, DbBackend, IntoSimpleExpr};

/// `col` contains `text`, ignoring case.
fn contains(col: impl IntoSimpleExpr, text: &str, backend: DbBackend) -> Expr {
    like(
        col.into_simple_expr(),
        like_pattern("%", text.trim(), "%"),
        backend,
    )
}

/// Activity ids with a transcript message containing `text`.
fn activities_with_message(text: &str, backend: DbBackend) -> SelectStatement {
    Query::select()
        .column(message::Column::ActivityId)
        .from(message::Entity)
        .and_where(contains(message::Column::Content, text, backend))
        .to_owned()
}

/// An empty search matches everything.
fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

pub fn leads(text: &str, backend: DbBackend) -> Condition {
    if blank(text) {
        return Condition::all();
    }
    let analyses = Query::select()
        .column(analysis::Column::LeadId)
        .from(analysis::Entity)
        .and_where(contains(analysis::Column::Summary, text, backend))
        .to_owned();
    let messages = Query::select()
        .column(message::Column::LeadId)
        .from(message::Entity)
        .and_where(contains(message::Column::Content, text, backend))
        .to_owned();
    Condition::any()
        .add(contains(lead::Column::Summary, text, backend))
        .add(lead::Column::Id.in_subquery(analyses))
        .add(lead::Column::Id.in_subquery(messages))
}

pub fn activities(text: &str, backend: DbBackend) -> Condition {
    if blank(text) {
        return Condition::all();
    }
    Condition::any()
        .add(contains(activity::Column::LeadSummary, text, backend))
        .add(contains(activity::Column::AnalysisSummary, text, backend))
        .add(activity::Column::Id.in_subquery(activities_with_message(text, backend)))
}

pub fn conversations(text: &str, backend: DbBackend) -> Condition {
    if blank(text) {
        return Condition::all();
    }
    Condition::all()
        .add(conversation::Column::ActivityId.in_subquery(activities_with_message(text, backend)))
}

pub fn analyses(text: &str, backend: DbBackend) -> Condition {
    if blank(text) {
        return Condition::all();
    }
    Condition::all().add(contains(analysis::Column::Summary, text, backend))
}
