//! Filter inputs, and the one function that folds a filter tree into a
//! sea-orm [`Condition`]: [`condition`].
//!
//! Every list takes the same operator inputs (`StringFilter`,
//! `DateTimeFilter`, `IntFilter`, `BooleanFilter`), combined with `and`,
//! `or` and `not`. Root lists, nested connections and aggregates share the
//! filter types, so a filter means the same thing wherever it is used.

use super::page::user_error;
use super::search;
use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use entity::{activity, analysis, conversation, disposition_event, lead, tool_call, variable};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
#[cfg(test)]
use sea_orm::EntityTrait;
use sea_orm::{ColumnTrait, Condition, DbBackend, IntoSimpleExpr};

/// How deep `and`/`or`/`not` may nest.
pub const MAX_FILTER_DEPTH: usize = 16;

/// Conditions on a text field. All given operators must hold.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct StringFilter {
    /// Equal to.
    pub eq: Option<String>,
    /// Not equal to (rows where the field is null do not match).
    pub ne: Option<String>,
    /// Equal to one of these.
    #[graphql(name = "in")]
    pub r#in: Option<Vec<String>>,
    /// Equal to none of these (rows where the field is null do not match).
    pub not_in: Option<Vec<String>>,
    /// Contains this text, ignoring case (ASCII case on SQLite).
    pub contains: Option<String>,
    /// Starts with this text, ignoring case (ASCII case on SQLite).
    pub starts_with: Option<String>,
    /// `true`: the field is null (absent from the payload); `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a time (RFC 3339; compared to the millisecond).
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct DateTimeFilter {
    /// Equal to.
    pub eq: Option<DateTime<Utc>>,
    /// Later than.
    pub gt: Option<DateTime<Utc>>,
    /// At or later than.
    pub gte: Option<DateTime<Utc>>,
    /// Earlier than.
    pub lt: Option<DateTime<Utc>>,
    /// At or earlier than.
    pub lte: Option<DateTime<Utc>>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a whole number.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct IntFilter {
    /// Equal to.
    pub eq: Option<i64>,
    /// Not equal to.
    pub ne: Option<i64>,
    /// Equal to one of these.
    #[graphql(name = "in")]
    pub r#in: Option<Vec<i64>>,
    /// Greater than.
    pub gt: Option<i64>,
    /// Greater than or equal to.
    pub gte: Option<i64>,
    /// Less than.
    pub lt: Option<i64>,
    /// Less than or equal to.
    pub lte: Option<i64>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a true/false field.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct BooleanFilter {
    /// Equal to.
    pub eq: Option<bool>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// Activities that extracted a variable (`result.variables.variables`) with
/// this name, optionally with a value. Values compare as text: strings as
/// they are, numbers and booleans as JSON (`"3"`, `"true"`).
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct VariableFilter {
    /// The variable's name, exactly as the platform sent it (e.g. "Urgency").
    pub name: String,
    /// Equal to.
    pub eq: Option<String>,
    /// Equal to one of these.
    #[graphql(name = "in")]
    pub r#in: Option<Vec<String>>,
    /// The value contains this text, ignoring case.
    pub contains: Option<String>,
}

/// What a filter level contributes besides `and` / `or` / `not`.
pub trait Filter: Sized {
    /// The conditions on this level's own fields.
    fn fields(&self, backend: DbBackend) -> Vec<Condition>;
    fn and(&self) -> &[Self];
    fn or(&self) -> &[Self];
    fn not(&self) -> Option<&Self>;
}

/// Fold a filter tree into one condition: a level's fields and its `and`
/// list must all hold, one of `or` must hold (an empty `or` list adds
/// nothing), and `not` must not. Too deep a tree is refused.
pub fn condition<F: Filter>(filter: &F, backend: DbBackend) -> async_graphql::Result<Condition> {
    fold(filter, backend, 0)
}

fn fold<F: Filter>(
    filter: &F,
    backend: DbBackend,
    depth: usize,
) -> async_graphql::Result<Condition> {
    if depth >= MAX_FILTER_DEPTH {
        return Err(user_error(format!(
            "the filter nests and/or/not deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    let mut all = Condition::all();
    for c in filter.fields(backend) {
        all = all.add(c);
    }
    for f in filter.and() {
        all = all.add(fold(f, backend, depth + 1)?);
    }
    if !filter.or().is_empty() {
        let mut any = Condition::any();
        for f in filter.or() {
            any = any.add(fold(f, backend, depth + 1)?);
        }
        all = all.add(any);
    }
    if let Some(f) = filter.not() {
        all = all.add(fold(f, backend, depth + 1)?.not());
    }
    Ok(all)
}

/// An optional filter, folded; no filter is no condition.
pub fn condition_of<F: Filter>(
    filter: Option<&F>,
    backend: DbBackend,
) -> async_graphql::Result<Condition> {
    match filter {
        Some(f) => condition(f, backend),
        None => Ok(Condition::all()),
    }
}

fn is_null(col: Expr, null: bool) -> Expr {
    if null {
        col.is_null()
    } else {
        col.is_not_null()
    }
}

/// `%text%`-style pattern with LIKE's wildcards escaped by a backslash
/// (PostgreSQL's default escape; SQLite is told with ESCAPE in [`like`]).
pub(crate) fn like_pattern(prefix: &str, text: &str, suffix: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    format!("{prefix}{escaped}{suffix}")
}

/// Case-insensitive LIKE: SQLite's LIKE already ignores (ASCII) case;
/// PostgreSQL needs ILIKE.
pub(crate) fn like(col: Expr, pattern: String, backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => {
            // sea-query parenthesises `pattern ESCAPE c` after ILIKE, which
            // PostgreSQL rejects; backslash is its default escape anyway.
            use sea_orm::sea_query::extension::postgres::PgExpr;
            col.ilike(LikeExpr::new(pattern))
        }
        _ => col.like(LikeExpr::new(pattern).escape('\\')),
    }
}

/// A text column; `fold_case` compares `eq`/`ne`/`in`/`notIn` ignoring case
/// too (used for dispositions, which platforms spell inconsistently).
pub fn string(
    col: impl IntoSimpleExpr,
    f: &StringFilter,
    fold_case: bool,
    backend: DbBackend,
) -> Condition {
    let col = col.into_simple_expr();
    let (lhs, norm): (Expr, fn(&str) -> Expr) = if fold_case {
        (Func::lower(col.clone()).into(), |v| {
            Func::lower(Expr::val(v.to_string())).into()
        })
    } else {
        (col.clone(), |v| Expr::val(v.to_string()))
    };
    let mut c = Condition::all();
    if let Some(v) = &f.eq {
        c = c.add(lhs.clone().eq(norm(v)));
    }
    if let Some(v) = &f.ne {
        c = c.add(lhs.clone().ne(norm(v)));
    }
    if let Some(vs) = &f.r#in {
        c = c.add(lhs.clone().is_in(vs.iter().map(|v| norm(v))));
    }
    if let Some(vs) = &f.not_in {
        c = c.add(lhs.clone().is_not_in(vs.iter().map(|v| norm(v))));
        c = c.add(col.clone().is_not_null());
    }
    if let Some(v) = &f.contains {
        c = c.add(like(col.clone(), like_pattern("%", v, "%"), backend));
    }
    if let Some(v) = &f.starts_with {
        c = c.add(like(col.clone(), like_pattern("", v, "%"), backend));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

/// A time column stored as epoch milliseconds.
pub fn datetime(col: impl IntoSimpleExpr, f: &DateTimeFilter) -> Condition {
    let col = col.into_simple_expr();
    let ms = |t: &DateTime<Utc>| t.timestamp_millis();
    let mut c = Condition::all();
    if let Some(t) = &f.eq {
        c = c.add(col.clone().eq(ms(t)));
    }
    if let Some(t) = &f.gt {
        c = c.add(col.clone().gt(ms(t)));
    }
    if let Some(t) = &f.gte {
        c = c.add(col.clone().gte(ms(t)));
    }
    if let Some(t) = &f.lt {
        c = c.add(col.clone().lt(ms(t)));
    }
    if let Some(t) = &f.lte {
        c = c.add(col.clone().lte(ms(t)));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

pub fn int(col: impl IntoSimpleExpr, f: &IntFilter) -> Condition {
    let col = col.into_simple_expr();
    let mut c = Condition::all();
    if let Some(v) = f.eq {
        c = c.add(col.clone().eq(v));
    }
    if let Some(v) = f.ne {
        c = c.add(col.clone().ne(v));
    }
    if let Some(vs) = &f.r#in {
        c = c.add(col.clone().is_in(vs.iter().copied()));
    }
    if let Some(v) = f.gt {
        c = c.add(col.clone().gt(v));
    }
    if let Some(v) = f.gte {
        c = c.add(col.clone().gte(v));
    }
    if let Some(v) = f.lt {
        c = c.add(col.clone().lt(v));
    }
    if let Some(v) = f.lte {
        c = c.add(col.clone().lte(v));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

pub fn boolean(col: impl IntoSimpleExpr, f: &BooleanFilter) -> Condition {
    let col = col.into_simple_expr();
    let mut c = Condition::all();
    if let Some(v) = f.eq {
        c = c.add(col.clone().eq(v));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

/// `activity_col IN (SELECT activity_id FROM variables WHERE name = … AND …)`.
fn variable(
    activity_col: impl IntoSimpleExpr,
    f: &VariableFilter,
    backend: DbBackend,
) -> Condition {
    let mut sub = Query::select();
    sub.column(variable::Column::ActivityId)
        .from(variable::Entity)
        .and_where(variable::Column::Name.eq(f.name.clone()));
    let value = Expr::col(variable::Column::ValueText);
    if let Some(v) = &f.eq {
        sub.and_where(value.clone().eq(v.clone()));
    }
    if let Some(vs) = &f.r#in {
        sub.and_where(value.clone().is_in(vs.iter().cloned()));
    }
    if let Some(v) = &f.contains {
        sub.and_where(like(value, like_pattern("%", v, "%"), backend));
    }
    Condition::all().add(activity_col.into_simple_expr().in_subquery(sub))
}

macro_rules! push {
    ($out:ident, $f:expr, $field:ident, $make:expr) => {
        if let Some(v) = &$f.$field {
            $out.push($make(v));
        }
    };
}

/// The `and` / `or` / `not` accessors, the same for every filter input.
macro_rules! combinators {
    () => {
        fn and(&self) -> &[Self] {
            self.and.as_deref().unwrap_or_default()
        }
        fn or(&self) -> &[Self] {
            self.or.as_deref().unwrap_or_default()
        }
        fn not(&self) -> Option<&Self> {
            self.not.as_deref()
        }
    };
}

/// Which leads to include.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct LeadFilter {
    /// Conditions on the lead's `id`.
    pub id: Option<StringFilter>,
    /// Conditions on the lead's `referenceId`.
    pub reference_id: Option<StringFilter>,
    /// Conditions on the lead's `projectId`.
    pub project_id: Option<StringFilter>,
    /// Conditions on the lead's `processId`.
    pub process_id: Option<StringFilter>,
    /// Conditions on the lead's `name`.
    pub name: Option<StringFilter>,
    /// Conditions on the lead's `state`.
    pub state: Option<StringFilter>,
    /// Compared ignoring case.
    pub disposition: Option<StringFilter>,
    /// Compared ignoring case (`positive` and `Positive` are one type).
    pub disposition_type: Option<StringFilter>,
    /// Conditions on the lead's `summary`.
    pub summary: Option<StringFilter>,
    /// Conditions on the lead's `lastActivityAt`.
    pub last_activity_at: Option<DateTimeFilter>,
    /// Conditions on the lead's `firstActivityAt`.
    pub first_activity_at: Option<DateTimeFilter>,
    /// Conditions on the lead's `activityCount`.
    pub activity_count: Option<IntFilter>,
    /// Leads whose summary, any analysis summary or any transcript message
    /// contains this text, ignoring case (index-backed for three
    /// characters or more).
    pub search: Option<String>,
    /// All of these filters must hold.
    pub and: Option<Vec<LeadFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<LeadFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<LeadFilter>>,
}

impl Filter for LeadFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use lead::Column as C;
        let mut out = Vec::new();
        push!(out, self, id, |f| string(C::Id, f, false, b));
        push!(out, self, reference_id, |f| string(
            C::ReferenceId,
            f,
            false,
            b
        ));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, process_id, |f| string(C::ProcessId, f, false, b));
        push!(out, self, name, |f| string(C::Name, f, false, b));
        push!(out, self, state, |f| string(C::State, f, false, b));
        push!(out, self, disposition, |f| string(
            C::Disposition,
            f,
            true,
            b
        ));
        push!(out, self, disposition_type, |f| string(
            C::DispositionType,
            f,
            true,
            b
        ));
        push!(out, self, summary, |f| string(C::Summary, f, false, b));
        push!(out, self, last_activity_at, |f| datetime(
            C::LastActivityAt,
            f
        ));
        push!(out, self, first_activity_at, |f| datetime(
            C::FirstActivityAt,
            f
        ));
        push!(out, self, activity_count, |f| int(C::ActivityCount, f));
        push!(out, self, search, |s: &String| search::leads(s, b));
        out
    }
    combinators!();
}

/// Which activities to include.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Conditions on the activity's `id`.
    pub id: Option<StringFilter>,
    /// Conditions on the activity's `leadId`.
    pub lead_id: Option<StringFilter>,
    /// Conditions on the activity's `actionType`.
    pub action_type: Option<StringFilter>,
    /// Conditions on the activity's `type`.
    #[graphql(name = "type")]
    pub r#type: Option<StringFilter>,
    /// Conditions on the activity's `status`.
    pub status: Option<StringFilter>,
    /// Conditions on the activity's `fromState`.
    pub from_state: Option<StringFilter>,
    /// Conditions on the activity's `toState`.
    pub to_state: Option<StringFilter>,
    /// Conditions on the activity's `nextState`.
    pub next_state: Option<StringFilter>,
    /// Conditions on the activity's `callStatus`.
    pub call_status: Option<StringFilter>,
    /// Conditions on the activity's `telephonyType`.
    pub telephony_type: Option<StringFilter>,
    /// Conditions on the activity's `flowId`.
    pub flow_id: Option<StringFilter>,
    /// Conditions on the activity's `projectId`.
    pub project_id: Option<StringFilter>,
    /// Conditions on the activity's `processId`.
    pub process_id: Option<StringFilter>,
    /// Conditions on the activity's `referenceId`.
    pub reference_id: Option<StringFilter>,
    /// Conditions on the activity's `leadDisposition`.
    pub lead_disposition: Option<StringFilter>,
    /// The analysis disposition of this activity, compared ignoring case.
    pub disposition: Option<StringFilter>,
    /// The analysis disposition type, compared ignoring case.
    pub disposition_type: Option<StringFilter>,
    /// Conditions on the activity's `timestamp`.
    pub timestamp: Option<DateTimeFilter>,
    /// Conditions on the activity's `scheduledAt`.
    pub scheduled_at: Option<DateTimeFilter>,
    /// Conditions on the activity's `attemptNumber`.
    pub attempt_number: Option<IntFilter>,
    /// Conditions on the activity's `channelId`.
    pub channel_id: Option<IntFilter>,
    /// Conditions on the activity's `isConnected`.
    pub is_connected: Option<BooleanFilter>,
    /// Conditions on the activity's `hasTransfer`.
    pub has_transfer: Option<BooleanFilter>,
    /// The activity has a conversation (a transcript).
    pub has_conversation: Option<BooleanFilter>,
    /// Activities that extracted this variable.
    pub variable: Option<VariableFilter>,
    /// Activities whose analysis summary or transcript contains this text,
    /// ignoring case (index-backed for three characters or more).
    pub search: Option<String>,
    /// All of these filters must hold.
    pub and: Option<Vec<ActivityFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<ActivityFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<ActivityFilter>>,
}

impl Filter for ActivityFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use activity::Column as C;
        let mut out = Vec::new();
        push!(out, self, id, |f| string(C::Id, f, false, b));
        push!(out, self, lead_id, |f| string(C::LeadId, f, false, b));
        push!(out, self, action_type, |f| string(
            C::ActionType,
            f,
            false,
            b
        ));
        push!(out, self, r#type, |f| string(C::Type, f, false, b));
        push!(out, self, status, |f| string(C::Status, f, false, b));
        push!(out, self, from_state, |f| string(C::FromState, f, false, b));
        push!(out, self, to_state, |f| string(C::ToState, f, false, b));
        push!(out, self, next_state, |f| string(C::NextState, f, false, b));
        push!(out, self, call_status, |f| string(
            C::CallStatus,
            f,
            false,
            b
        ));
        push!(out, self, telephony_type, |f| string(
            C::TelephonyType,
            f,
            false,
            b
        ));
        push!(out, self, flow_id, |f| string(C::FlowId, f, false, b));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, process_id, |f| string(C::ProcessId, f, false, b));
        push!(out, self, reference_id, |f| string(
            C::ReferenceId,
            f,
            false,
            b
        ));
        push!(out, self, lead_disposition, |f| string(
            C::LeadDisposition,
            f,
            true,
            b
        ));
        push!(out, self, disposition, |f| string(
            C::AnalysisDisposition,
            f,
            true,
            b
        ));
        push!(out, self, disposition_type, |f| string(
            C::AnalysisDispositionType,
            f,
            true,
            b
        ));
        push!(out, self, timestamp, |f| datetime(C::Timestamp, f));
        push!(out, self, scheduled_at, |f| datetime(C::ScheduledAt, f));
        push!(out, self, attempt_number, |f| int(C::AttemptNumber, f));
        push!(out, self, channel_id, |f| int(C::ChannelId, f));
        push!(out, self, is_connected, |f| boolean(C::IsConnected, f));
        push!(out, self, has_transfer, |f| boolean(C::HasTransfer, f));
        push!(out, self, has_conversation, |f| boolean(
            C::HasConversation,
            f
        ));
        push!(out, self, variable, |f| variable(C::Id, f, b));
        push!(out, self, search, |s: &String| search::activities(s, b));
        out
    }
    combinators!();
}

/// Which conversations to include.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ConversationFilter {
    /// The conversation id: the platform's `conversationId`, or the
    /// activity id when the platform sent none.
    pub id: Option<StringFilter>,
    /// Conditions on the conversation's `activityId`.
    pub activity_id: Option<StringFilter>,
    /// Conditions on the conversation's `leadId`.
    pub lead_id: Option<StringFilter>,
    /// Conditions on the conversation's `projectId`.
    pub project_id: Option<StringFilter>,
    /// Conditions on the conversation's `flowId`.
    pub flow_id: Option<StringFilter>,
    /// Conditions on the conversation's `streamId`.
    pub stream_id: Option<StringFilter>,
    /// Conditions on the conversation's `callSid`.
    pub call_sid: Option<StringFilter>,
    /// Conditions on the conversation's `phoneHash`.
    pub phone_hash: Option<StringFilter>,
    /// Conditions on the conversation's `turnCount`.
    pub turn_count: Option<IntFilter>,
    /// Conditions on the conversation's `reconciled`.
    pub reconciled: Option<BooleanFilter>,
    /// Conditions on the conversation's `createdAt`.
    pub created_at: Option<DateTimeFilter>,
    /// Conditions on the conversation's `updatedAt`.
    pub updated_at: Option<DateTimeFilter>,
    /// The time of the conversation's activity.
    pub timestamp: Option<DateTimeFilter>,
    /// Conversations with a transcript message containing this text,
    /// ignoring case (index-backed).
    pub search: Option<String>,
    /// All of these filters must hold.
    pub and: Option<Vec<ConversationFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<ConversationFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<ConversationFilter>>,
}

impl Filter for ConversationFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use conversation::Column as C;
        let mut out = Vec::new();
        push!(out, self, id, |f| {
            let id: Expr =
                Func::coalesce([Expr::col(C::ConversationId), Expr::col(C::ActivityId)]).into();
            string(id, f, false, b)
        });
        push!(out, self, activity_id, |f| string(
            C::ActivityId,
            f,
            false,
            b
        ));
        push!(out, self, lead_id, |f| string(C::LeadId, f, false, b));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, flow_id, |f| string(C::FlowId, f, false, b));
        push!(out, self, stream_id, |f| string(C::StreamId, f, false, b));
        push!(out, self, call_sid, |f| string(C::CallSid, f, false, b));
        push!(out, self, phone_hash, |f| string(C::PhoneHash, f, false, b));
        push!(out, self, turn_count, |f| int(C::TurnCount, f));
        push!(out, self, reconciled, |f| boolean(C::Reconciled, f));
        push!(out, self, created_at, |f| datetime(C::CreatedAt, f));
        push!(out, self, updated_at, |f| datetime(C::UpdatedAt, f));
        push!(out, self, timestamp, |f| datetime(C::Timestamp, f));
        push!(out, self, search, |s: &String| search::conversations(s, b));
        out
    }
    combinators!();
}

/// Which analyses to include.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct AnalysisFilter {
    /// Conditions on the analysis's `activityId`.
    pub activity_id: Option<StringFilter>,
    /// Conditions on the analysis's `leadId`.
    pub lead_id: Option<StringFilter>,
    /// Conditions on the analysis's `projectId`.
    pub project_id: Option<StringFilter>,
    /// Compared ignoring case.
    pub disposition: Option<StringFilter>,
    /// Compared ignoring case.
    pub disposition_type: Option<StringFilter>,
    /// Conditions on the analysis's `summary`.
    pub summary: Option<StringFilter>,
    /// Conditions on the analysis's `success`.
    pub success: Option<BooleanFilter>,
    /// The analysis's own time.
    pub timestamp: Option<DateTimeFilter>,
    /// The time of the analysed activity.
    pub activity_timestamp: Option<DateTimeFilter>,
    /// Analyses whose summary contains this text, ignoring case
    /// (index-backed).
    pub search: Option<String>,
    /// All of these filters must hold.
    pub and: Option<Vec<AnalysisFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<AnalysisFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<AnalysisFilter>>,
}

impl Filter for AnalysisFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use analysis::Column as C;
        let mut out = Vec::new();
        push!(out, self, activity_id, |f| string(
            C::ActivityId,
            f,
            false,
            b
        ));
        push!(out, self, lead_id, |f| string(C::LeadId, f, false, b));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, disposition, |f| string(
            C::Disposition,
            f,
            true,
            b
        ));
        push!(out, self, disposition_type, |f| string(
            C::DispositionType,
            f,
            true,
            b
        ));
        push!(out, self, summary, |f| string(C::Summary, f, false, b));
        push!(out, self, success, |f| boolean(C::Success, f));
        push!(out, self, timestamp, |f| datetime(C::Timestamp, f));
        push!(out, self, activity_timestamp, |f| datetime(
            C::ActivityTimestamp,
            f
        ));
        push!(out, self, search, |s: &String| search::analyses(s, b));
        out
    }
    combinators!();
}

/// Which tool calls to include.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ToolCallFilter {
    /// Conditions on the tool call's `activityId`.
    pub activity_id: Option<StringFilter>,
    /// Conditions on the tool call's `leadId`.
    pub lead_id: Option<StringFilter>,
    /// Conditions on the tool call's `projectId`.
    pub project_id: Option<StringFilter>,
    /// Conditions on the tool call's `toolCallId`.
    pub tool_call_id: Option<StringFilter>,
    /// The tool's name (e.g. "scheduleExpertCallback").
    pub name: Option<StringFilter>,
    /// Conditions on the tool call's `utteranceId`.
    pub utterance_id: Option<StringFilter>,
    /// `response.success`.
    pub success: Option<BooleanFilter>,
    /// Conditions on the tool call's `timestamp`.
    pub timestamp: Option<DateTimeFilter>,
    /// All of these filters must hold.
    pub and: Option<Vec<ToolCallFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<ToolCallFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<ToolCallFilter>>,
}

impl Filter for ToolCallFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use tool_call::Column as C;
        let mut out = Vec::new();
        push!(out, self, activity_id, |f| string(
            C::ActivityId,
            f,
            false,
            b
        ));
        push!(out, self, lead_id, |f| string(C::LeadId, f, false, b));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, tool_call_id, |f| string(
            C::ToolCallId,
            f,
            false,
            b
        ));
        push!(out, self, name, |f| string(C::Name, f, false, b));
        push!(out, self, utterance_id, |f| string(
            C::UtteranceId,
            f,
            false,
            b
        ));
        push!(out, self, success, |f| boolean(C::Success, f));
        push!(out, self, timestamp, |f| datetime(C::Timestamp, f));
        out
    }
    combinators!();
}

/// Which disposition changes to include (queries and subscriptions).
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct DispositionEventFilter {
    /// Conditions on the event's `leadId`.
    pub lead_id: Option<StringFilter>,
    /// Conditions on the event's `projectId`.
    pub project_id: Option<StringFilter>,
    /// The new disposition, compared ignoring case.
    pub disposition: Option<StringFilter>,
    /// Compared ignoring case.
    pub disposition_type: Option<StringFilter>,
    /// The disposition before the change, compared ignoring case.
    pub previous_disposition: Option<StringFilter>,
    /// Conditions on the event's `occurredAt`.
    pub occurred_at: Option<DateTimeFilter>,
    /// All of these filters must hold.
    pub and: Option<Vec<DispositionEventFilter>>,
    /// At least one of these filters must hold (an empty list adds nothing).
    pub or: Option<Vec<DispositionEventFilter>>,
    /// This filter must not hold.
    pub not: Option<Box<DispositionEventFilter>>,
}

impl Filter for DispositionEventFilter {
    fn fields(&self, b: DbBackend) -> Vec<Condition> {
        use disposition_event::Column as C;
        let mut out = Vec::new();
        push!(out, self, lead_id, |f| string(C::LeadId, f, false, b));
        push!(out, self, project_id, |f| string(C::ProjectId, f, false, b));
        push!(out, self, disposition, |f| string(
            C::Disposition,
            f,
            true,
            b
        ));
        push!(out, self, disposition_type, |f| string(
            C::DispositionType,
            f,
            true,
            b
        ));
        push!(out, self, previous_disposition, |f| string(
            C::PreviousDisposition,
            f,
            true,
            b
        ));
        push!(out, self, occurred_at, |f| datetime(C::OccurredAt, f));
        out
    }
    combinators!();
}

/// SQL's three-valued logic, for checking live events in memory exactly as
/// the database would check stored ones: `None` is SQL's NULL (unknown).
type Truth = Option<bool>;

fn all(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut unknown = false;
    for v in values {
        match v {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

fn any(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut unknown = false;
    for v in values {
        match v {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// `text LIKE pattern` with one `%` at either end or both, ASCII case
/// folded (SQLite's LIKE; PostgreSQL's ILIKE also folds other letters).
fn like_match(value: &str, needle: &str, anchored_start: bool) -> bool {
    let value = value.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    if anchored_start {
        value.starts_with(&needle)
    } else {
        value.contains(&needle)
    }
}

impl StringFilter {
    /// What [`string`] makes of this filter, on one value.
    pub fn test(&self, value: Option<&str>, fold_case: bool) -> Truth {
        let norm = |v: &str| {
            if fold_case {
                v.to_lowercase()
            } else {
                v.to_string()
            }
        };
        let lhs = value.map(norm);
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(v) = &self.eq {
            checks.push(lhs.as_ref().map(|l| *l == norm(v)));
        }
        if let Some(v) = &self.ne {
            checks.push(lhs.as_ref().map(|l| *l != norm(v)));
        }
        if let Some(vs) = &self.r#in {
            checks.push(if vs.is_empty() {
                Some(false)
            } else {
                lhs.as_ref().map(|l| vs.iter().any(|v| *l == norm(v)))
            });
        }
        if let Some(vs) = &self.not_in {
            checks.push(if vs.is_empty() {
                Some(true)
            } else {
                lhs.as_ref().map(|l| !vs.iter().any(|v| *l == norm(v)))
            });
            checks.push(Some(value.is_some()));
        }
        if let Some(v) = &self.contains {
            checks.push(value.map(|x| like_match(x, v, false)));
        }
        if let Some(v) = &self.starts_with {
            checks.push(value.map(|x| like_match(x, v, true)));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}

impl DateTimeFilter {
    /// What [`datetime`] makes of this filter, on one value.
    pub fn test(&self, value: Option<i64>) -> Truth {
        let ms = |t: &DateTime<Utc>| t.timestamp_millis();
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(t) = &self.eq {
            checks.push(value.map(|v| v == ms(t)));
        }
        if let Some(t) = &self.gt {
            checks.push(value.map(|v| v > ms(t)));
        }
        if let Some(t) = &self.gte {
            checks.push(value.map(|v| v >= ms(t)));
        }
        if let Some(t) = &self.lt {
            checks.push(value.map(|v| v < ms(t)));
        }
        if let Some(t) = &self.lte {
            checks.push(value.map(|v| v <= ms(t)));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}

impl DispositionEventFilter {
    /// Whether a live event passes this filter: the same answer the
    /// database gives for [`condition`] on the stored event.
    pub fn matches(&self, event: &disposition_event::Model) -> bool {
        self.test(event, 0) == Some(true)
    }

    fn test(&self, e: &disposition_event::Model, depth: usize) -> Truth {
        if depth >= MAX_FILTER_DEPTH {
            return Some(false);
        }
        let mut checks: Vec<Truth> = Vec::new();
        let s = |f: &Option<StringFilter>, v: Option<&str>, fold: bool| {
            f.as_ref().map(|f| f.test(v, fold))
        };
        checks.extend(s(&self.lead_id, Some(&e.lead_id), false));
        checks.extend(s(&self.project_id, e.project_id.as_deref(), false));
        checks.extend(s(&self.disposition, Some(&e.disposition), true));
        checks.extend(s(
            &self.disposition_type,
            e.disposition_type.as_deref(),
            true,
        ));
        checks.extend(s(
            &self.previous_disposition,
            e.previous_disposition.as_deref(),
            true,
        ));
        checks.extend(
            self.occurred_at
                .as_ref()
                .map(|f| f.test(Some(e.occurred_at))),
        );
        for f in Filter::and(self) {
            checks.push(f.test(e, depth + 1));
        }
        let or = Filter::or(self);
        if !or.is_empty() {
            checks.push(any(or.iter().map(|f| f.test(e, depth + 1))));
        }
        if let Some(f) = Filter::not(self) {
            checks.push(f.test(e, depth + 1).map(|b| !b));
        }
        all(checks)
    }
}

/// Render a condition on `E` as the WHERE clause text (for tests and logs).
#[cfg(test)]
fn render<E: EntityTrait + Default>(cond: Condition, backend: DbBackend) -> String {
    use sea_orm::{QueryFilter, QueryTrait};
    let sql = E::find().filter(cond).build(backend).to_string();
    sql.split_once(" WHERE ")
        .map(|(_, w)| w.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(eq: &str) -> StringFilter {
        StringFilter {
            eq: Some(eq.into()),
            ..Default::default()
        }
    }

    #[test]
    fn no_filter_is_no_condition() {
        let c = condition(&LeadFilter::default(), DbBackend::Sqlite).unwrap();
        assert_eq!(render::<lead::Entity>(c, DbBackend::Sqlite), "TRUE");
    }

    #[test]
    fn fields_and_and_all_hold() {
        let f = LeadFilter {
            project_id: Some(s("P")),
            and: Some(vec![LeadFilter {
                state: Some(s("done")),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let sql =
            render::<lead::Entity>(condition(&f, DbBackend::Sqlite).unwrap(), DbBackend::Sqlite);
        assert_eq!(
            sql,
            r#""leads"."project_id" = 'P' AND "leads"."state" = 'done'"#
        );
    }

    #[test]
    fn or_needs_one_and_not_negates() {
        let f = LeadFilter {
            or: Some(vec![
                LeadFilter {
                    name: Some(s("a")),
                    ..Default::default()
                },
                LeadFilter {
                    name: Some(s("b")),
                    ..Default::default()
                },
            ]),
            not: Some(Box::new(LeadFilter {
                state: Some(s("x")),
                ..Default::default()
            })),
            ..Default::default()
        };
        let sql =
            render::<lead::Entity>(condition(&f, DbBackend::Sqlite).unwrap(), DbBackend::Sqlite);
        assert_eq!(
            sql,
            r#"("leads"."name" = 'a' OR "leads"."name" = 'b') AND (NOT "leads"."state" = 'x')"#
        );
    }

    #[test]
    fn empty_or_adds_nothing() {
        let f = LeadFilter {
            or: Some(vec![]),
            ..Default::default()
        };
        let sql =
            render::<lead::Entity>(condition(&f, DbBackend::Sqlite).unwrap(), DbBackend::Sqlite);
        assert_eq!(sql, "TRUE");
    }

    #[test]
    fn operators_of_a_string_filter() {
        let f = StringFilter {
            ne: Some("a".into()),
            r#in: Some(vec!["b".into(), "c".into()]),
            not_in: Some(vec!["d".into()]),
            contains: Some("50%_off\\".into()),
            starts_with: Some("St".into()),
            is_null: Some(false),
            ..Default::default()
        };
        let sql = render::<lead::Entity>(
            string(lead::Column::Name, &f, false, DbBackend::Sqlite),
            DbBackend::Sqlite,
        );
        assert_eq!(
            sql,
            r#""leads"."name" <> 'a' AND "leads"."name" IN ('b', 'c') AND "leads"."name" NOT IN ('d') AND "leads"."name" IS NOT NULL AND "leads"."name" LIKE '%50\%\_off\\%' ESCAPE '\' AND "leads"."name" LIKE 'St%' ESCAPE '\' AND "leads"."name" IS NOT NULL"#
        );
        let pg = render::<lead::Entity>(
            string(
                lead::Column::Name,
                &StringFilter {
                    contains: Some("x".into()),
                    ..Default::default()
                },
                false,
                DbBackend::Postgres,
            ),
            DbBackend::Postgres,
        );
        assert_eq!(pg, r#""leads"."name" ILIKE '%x%'"#);
    }

    #[test]
    fn dispositions_compare_ignoring_case() {
        let f = LeadFilter {
            disposition_type: Some(s("Positive")),
            ..Default::default()
        };
        let sql =
            render::<lead::Entity>(condition(&f, DbBackend::Sqlite).unwrap(), DbBackend::Sqlite);
        assert_eq!(
            sql,
            r#"LOWER("leads"."disposition_type") = LOWER('Positive')"#
        );
    }

    #[test]
    fn times_compare_as_epoch_milliseconds() {
        let t: DateTime<Utc> = "2026-01-12T04:55:59.048Z".parse().unwrap();
        let f = DateTimeFilter {
            gte: Some(t),
            lt: Some(t),
            is_null: Some(true),
            ..Default::default()
        };
        let sql = render::<lead::Entity>(
            datetime(lead::Column::LastActivityAt, &f),
            DbBackend::Sqlite,
        );
        assert_eq!(
            sql,
            r#""leads"."last_activity_at" >= 1768193759048 AND "leads"."last_activity_at" < 1768193759048 AND "leads"."last_activity_at" IS NULL"#
        );
    }

    #[test]
    fn int_and_boolean_operators() {
        let f = IntFilter {
            eq: Some(1),
            ne: Some(2),
            r#in: Some(vec![3, 4]),
            gt: Some(5),
            gte: Some(6),
            lt: Some(7),
            lte: Some(8),
            is_null: Some(false),
        };
        let sql = render::<lead::Entity>(int(lead::Column::ActivityCount, &f), DbBackend::Sqlite);
        assert_eq!(
            sql,
            r#""leads"."activity_count" = 1 AND "leads"."activity_count" <> 2 AND "leads"."activity_count" IN (3, 4) AND "leads"."activity_count" > 5 AND "leads"."activity_count" >= 6 AND "leads"."activity_count" < 7 AND "leads"."activity_count" <= 8 AND "leads"."activity_count" IS NOT NULL"#
        );
        let b = BooleanFilter {
            eq: Some(true),
            is_null: None,
        };
        let sql = render::<activity::Entity>(
            boolean(activity::Column::IsConnected, &b),
            DbBackend::Sqlite,
        );
        assert_eq!(sql, r#""activities"."is_connected" = TRUE"#);
    }

    #[test]
    fn variables_filter_through_the_variables_table() {
        let f = ActivityFilter {
            variable: Some(VariableFilter {
                name: "Urgency".into(),
                eq: Some("Very Urgent".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sql = render::<activity::Entity>(
            condition(&f, DbBackend::Sqlite).unwrap(),
            DbBackend::Sqlite,
        );
        assert_eq!(
            sql,
            r#""activities"."id" IN (SELECT "activity_id" FROM "variables" WHERE "variables"."name" = 'Urgency' AND "value_text" = 'Very Urgent')"#
        );
    }

    #[test]
    fn too_deep_a_filter_is_refused() {
        let mut f = LeadFilter::default();
        for _ in 0..MAX_FILTER_DEPTH {
            f = LeadFilter {
                not: Some(Box::new(f)),
                ..Default::default()
            };
        }
        let err = condition(&f, DbBackend::Sqlite).unwrap_err();
        assert!(err.message.contains("deeper than 16"), "{}", err.message);
    }
}
