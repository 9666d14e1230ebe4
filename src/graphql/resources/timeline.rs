//! A lead's timeline: everything that happened to it in one list, oldest
//! first — its activities (calls, schedules, others), the state moves and
//! disposition changes they made, update results, and callbacks promised
//! and come due.
//!
//! A lead's history is short (tens of rows), so the timeline reads all of
//! it in one statement (a UNION ALL over the four tables, batched across
//! the leads of a page), builds the entries, and pages them in memory
//! with keyset cursors (moment, kind, id). The objects an entry links to
//! are looked up only when asked for, batched like any other lookup.

use super::activity::Activity;
use super::callback::Callback;
use super::disposition_event::DispositionEvent;
use super::lead_update::LeadUpdate;
use super::{loaders, look_up};
use crate::error::{bad_input, ApiError};
use crate::graphql::engine::connection::{connection, Total};
use crate::graphql::engine::loader::{Batch, LoadError};
use crate::graphql::engine::page::{Page, PageArgs, PageInfo, DEFAULT_PAGE, MAX_PAGE};
use crate::store::callbacks::OPEN;
use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, Object, Result};
use chrono::{DateTime, Utc};
use entity::{activity, callback, lead_update};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::FromQueryResult;
use std::collections::HashMap;
use std::sync::Arc;

/// What a timeline entry tells of.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimelineKind {
    /// A call attempt (an activity of type `call`).
    Call,
    /// A scheduled activity (type `schedule`).
    Schedule,
    /// Any other activity.
    OtherActivity,
    /// An activity moved the lead to another state.
    StateChange,
    /// The lead's disposition took a new value.
    DispositionChange,
    /// The result of an "update lead" call.
    LeadUpdate,
    /// A callback was promised.
    CallbackRequested,
    /// A promised callback's moment came while it was still to be made.
    CallbackDue,
}

/// One thing that happened to a lead.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    at: i64,
    kind: TimelineKind,
    /// The row it comes from (activity, event, update or callback id).
    id: String,
    summary: Option<String>,
    from_state: Option<String>,
    to_state: Option<String>,
}

/// One thing that happened to a lead: when, what kind, a one-line
/// summary, and the row it comes from.
#[Object]
impl TimelineEntry {
    /// When it happened.
    async fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.at)
    }

    /// What it tells of.
    async fn kind(&self) -> TimelineKind {
        self.kind
    }

    /// One line saying what happened, e.g. "Attempted → Interested".
    async fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }

    /// The activity (calls, schedules, other activities, state changes).
    async fn activity(&self, ctx: &Context<'_>) -> Result<Option<Arc<Activity>>> {
        match self.kind {
            TimelineKind::Call
            | TimelineKind::Schedule
            | TimelineKind::OtherActivity
            | TimelineKind::StateChange => {
                look_up::<Activity>(ctx, activity::Column::Id, &self.id).await
            }
            _ => Ok(None),
        }
    }

    /// The disposition change (DISPOSITION_CHANGE).
    async fn disposition_event(&self, ctx: &Context<'_>) -> Result<Option<Arc<DispositionEvent>>> {
        if self.kind != TimelineKind::DispositionChange {
            return Ok(None);
        }
        let id: i64 = self.id.parse().map_err(|_| {
            async_graphql::Error::new(format!(
                "disposition event id {:?} is not a number",
                self.id
            ))
        })?;
        super::disposition_event::event_by_id(ctx, id).await
    }

    /// The update result (LEAD_UPDATE).
    async fn update(&self, ctx: &Context<'_>) -> Result<Option<Arc<LeadUpdate>>> {
        if self.kind != TimelineKind::LeadUpdate {
            return Ok(None);
        }
        look_up::<LeadUpdate>(ctx, lead_update::Column::Id, &self.id).await
    }

    /// The callback (CALLBACK_REQUESTED, CALLBACK_DUE).
    async fn callback(&self, ctx: &Context<'_>) -> Result<Option<Arc<Callback>>> {
        match self.kind {
            TimelineKind::CallbackRequested | TimelineKind::CallbackDue => {
                look_up::<Callback>(ctx, callback::Column::Id, &self.id).await
            }
            _ => Ok(None),
        }
    }

    /// The state before (STATE_CHANGE).
    async fn from_state(&self) -> Option<&str> {
        self.from_state.as_deref()
    }

    /// The state after (STATE_CHANGE).
    async fn to_state(&self) -> Option<&str> {
        self.to_state.as_deref()
    }
}

connection!(
    TimelineEntryConnection,
    TimelineEntryEdge,
    TimelineEntry,
    "A page of a lead's timeline (Relay connection).",
    "An edge in a lead's timeline: one entry and its cursor."
);

/// One row of the timeline statement: the source table (`a`ctivity,
/// `d`isposition event, `u`pdate, `c`allback), its id and moment, and a
/// few of its columns as text and numbers (see [`rows`]).
#[derive(Debug, FromQueryResult)]
struct Source {
    lead_id: String,
    src: String,
    id: String,
    at: i64,
    t1: Option<String>,
    t2: Option<String>,
    t3: Option<String>,
    t4: Option<String>,
    n1: Option<i64>,
    n2: Option<i64>,
}

/// The timeline of `lead`, at the reader's moment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimelineOf {
    pub lead: String,
}

impl Loader<TimelineOf> for Batch {
    type Value = Arc<Vec<TimelineEntry>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[TimelineOf],
    ) -> Result<HashMap<TimelineOf, Arc<Vec<TimelineEntry>>>, LoadError> {
        let leads: Vec<String> = keys.iter().map(|k| k.lead.clone()).collect();
        let db = self.reader.db();
        let statement = db.get_database_backend().build(&statement(&leads));
        let mut by_lead: HashMap<String, Vec<TimelineEntry>> = HashMap::new();
        for source in Source::find_by_statement(statement)
            .all(db)
            .await
            .map_err(Arc::new)?
        {
            let list = by_lead.entry(source.lead_id.clone()).or_default();
            entries(source, self.reader.now_ms(), list);
        }
        Ok(keys
            .iter()
            .map(|k| {
                let mut list = by_lead.remove(&k.lead).unwrap_or_default();
                list.sort_by(|a, b| order(a).cmp(&order(b)));
                (k.clone(), Arc::new(list))
            })
            .collect())
    }
}

/// The timeline's order: moment, kind, id.
fn order(e: &TimelineEntry) -> (i64, TimelineKind, &str) {
    (e.at, e.kind, e.id.as_str())
}

/// `CAST(col AS TEXT)`.
fn text(col: &str) -> Expr {
    Expr::cust(format!("CAST({col} AS TEXT)"))
}

/// A text column with no value here (typed, for PostgreSQL's UNION).
fn null() -> Expr {
    Expr::cust("CAST(NULL AS TEXT)")
}

/// A number column with no value here.
fn no_number() -> Expr {
    Expr::cust("CAST(NULL AS BIGINT)")
}

/// One part of the statement: `table`'s rows of `leads` as [`Source`].
#[allow(clippy::too_many_arguments)]
fn part(
    table: &str,
    src: &str,
    leads: &[String],
    id: Expr,
    at: &str,
    texts: [Expr; 4],
    numbers: [Expr; 2],
) -> SelectStatement {
    let [t1, t2, t3, t4] = texts;
    let [n1, n2] = numbers;
    Query::select()
        .expr_as(Expr::col(Alias::new("lead_id")), Alias::new("lead_id"))
        // A literal (a bound value's type is unknown to PostgreSQL here).
        .expr_as(Expr::cust(format!("'{src}'")), Alias::new("src"))
        .expr_as(id, Alias::new("id"))
        .expr_as(Expr::col(Alias::new(at)), Alias::new("at"))
        .expr_as(t1, Alias::new("t1"))
        .expr_as(t2, Alias::new("t2"))
        .expr_as(t3, Alias::new("t3"))
        .expr_as(t4, Alias::new("t4"))
        .expr_as(n1, Alias::new("n1"))
        .expr_as(n2, Alias::new("n2"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("lead_id")).is_in(leads.iter().cloned()))
        .take()
}

/// Every row of the leads' four sources, in one statement.
fn statement(leads: &[String]) -> SelectStatement {
    let col = |c: &str| Expr::col(Alias::new(c));
    let mut query = part(
        "activities",
        "a",
        leads,
        col("id"),
        "timestamp",
        [
            col("type"),
            col("from_state"),
            col("to_state"),
            Expr::cust("COALESCE(analysis_disposition, call_status, status)"),
        ],
        [no_number(), no_number()],
    );
    query.union(
        UnionType::All,
        part(
            "disposition_events",
            "d",
            leads,
            text("id"),
            "occurred_at",
            [
                col("disposition"),
                col("previous_disposition"),
                null(),
                null(),
            ],
            [no_number(), no_number()],
        ),
    );
    query.union(
        UnionType::All,
        part(
            "lead_updates",
            "u",
            leads,
            col("id"),
            "timestamp",
            [
                Expr::cust("CASE WHEN success THEN 'succeeded' WHEN NOT success THEN 'failed' END"),
                col("error"),
                null(),
                null(),
            ],
            [no_number(), no_number()],
        ),
    );
    query.union(
        UnionType::All,
        part(
            "callbacks",
            "c",
            leads,
            col("id"),
            "requested_at",
            [
                col("state"),
                col("local_date"),
                col("local_time"),
                col("timezone"),
            ],
            [col("due_at"), col("closed_at")],
        ),
    );
    query
}

/// The entries one source row makes, as of `now`.
fn entries(s: Source, now: i64, out: &mut Vec<TimelineEntry>) {
    let entry = |kind, at, summary: Option<String>| TimelineEntry {
        at,
        kind,
        id: s.id.clone(),
        summary,
        from_state: None,
        to_state: None,
    };
    match s.src.as_str() {
        "a" => {
            let kind = match s.t1.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("call") => TimelineKind::Call,
                Some("schedule") => TimelineKind::Schedule,
                _ => TimelineKind::OtherActivity,
            };
            let what = s.t1.clone().unwrap_or_else(|| "activity".to_string());
            let summary = match &s.t4 {
                Some(outcome) => format!("{what}: {outcome}"),
                None => what,
            };
            out.push(entry(kind, s.at, Some(summary)));
            if let Some(to) = &s.t3 {
                let moved =
                    s.t2.as_ref()
                        .is_none_or(|from| !from.eq_ignore_ascii_case(to));
                if moved {
                    let from = s.t2.as_deref().unwrap_or("(none)");
                    let mut change = entry(
                        TimelineKind::StateChange,
                        s.at,
                        Some(format!("{from} → {to}")),
                    );
                    change.from_state = s.t2.clone();
                    change.to_state = Some(to.clone());
                    out.push(change);
                }
            }
        }
        "d" => {
            let new = s.t1.clone().unwrap_or_default();
            let summary = match &s.t2 {
                Some(previous) => format!("{previous} → {new}"),
                None => new,
            };
            out.push(entry(TimelineKind::DispositionChange, s.at, Some(summary)));
        }
        "u" => {
            let summary = match (s.t1.as_deref(), &s.t2) {
                (Some("failed"), Some(error)) => format!("update failed: {error}"),
                (Some(outcome), _) => format!("update {outcome}"),
                (None, _) => "update".to_string(),
            };
            out.push(entry(TimelineKind::LeadUpdate, s.at, Some(summary)));
        }
        "c" => {
            let promised = [s.t2.as_deref(), s.t3.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let zone =
                s.t4.as_deref()
                    .map(|z| format!(" ({z})"))
                    .unwrap_or_default();
            out.push(entry(
                TimelineKind::CallbackRequested,
                s.at,
                Some(format!("callback promised for {promised}{zone}")),
            ));
            // It came due if its moment passed while it was still open.
            let (due, closed) = (s.n1, s.n2);
            if let Some(due) = due.filter(|d| *d <= now) {
                let open_then = s.t1.as_deref() == Some(OPEN) || closed.is_none_or(|c| c > due);
                if open_then {
                    out.push(entry(
                        TimelineKind::CallbackDue,
                        due,
                        Some(format!("callback due: {promised}{zone}")),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// An entry's cursor: its moment, kind and id.
fn cursor(e: &TimelineEntry) -> String {
    format!("{}:{}:{}", e.at, e.kind as u8, e.id)
}

/// The (moment, kind, id) a cursor names, or a clear error.
fn decode(text: &str, arg: &str) -> Result<(i64, u8, String)> {
    let mut parts = text.splitn(3, ':');
    let parsed = (|| {
        let at = parts.next()?.parse().ok()?;
        let kind = parts.next()?.parse().ok()?;
        Some((at, kind, parts.next()?.to_string()))
    })();
    parsed.ok_or_else(|| {
        bad_input(format!(
            "`{arg}` must be the cursor of a timeline entry (got {text:?})"
        ))
    })
}

/// One page of `entries` (in timeline order) by `args`, counting from
/// either end as Relay's rules say.
pub fn page(entries: &[TimelineEntry], args: &PageArgs) -> Result<Page<TimelineEntry>> {
    let limit = |n: Option<i32>, arg: &str| -> Result<Option<usize>> {
        match n {
            Some(n) if n < 0 => Err(bad_input(format!("`{arg}` must not be negative (got {n})"))),
            Some(n) if n as u64 > MAX_PAGE => Err(bad_input(format!(
                "`{arg}` may be at most {MAX_PAGE} (got {n}); fetch further pages with `after`/`before`"
            ))),
            n => Ok(n.map(|n| n as usize)),
        }
    };
    let (first, last) = (limit(args.first, "first")?, limit(args.last, "last")?);
    if first.is_some() && last.is_some() {
        return Err(bad_input(
            "give `first` or `last`, not both: `first` pages forward from `after`, `last` backward from `before`",
        ));
    }
    let key = |e: &TimelineEntry| (e.at, e.kind as u8, e.id.clone());
    let after = args
        .after
        .as_deref()
        .map(|c| decode(c, "after"))
        .transpose()?;
    let before = args
        .before
        .as_deref()
        .map(|c| decode(c, "before"))
        .transpose()?;
    let window: Vec<&TimelineEntry> = entries
        .iter()
        .filter(|e| after.as_ref().is_none_or(|a| key(e) > *a))
        .filter(|e| before.as_ref().is_none_or(|b| key(e) < *b))
        .collect();
    let from_end = last.is_some() || (first.is_none() && before.is_some() && after.is_none());
    let size = first.or(last).unwrap_or(DEFAULT_PAGE as usize);
    let (chosen, more) = if from_end {
        let start = window.len().saturating_sub(size);
        (&window[start..], start > 0)
    } else {
        let end = size.min(window.len());
        (&window[..end], end < window.len())
    };
    let rows: Vec<(String, TimelineEntry)> =
        chosen.iter().map(|e| (cursor(e), (*e).clone())).collect();
    let (has_next_page, has_previous_page) = if from_end {
        (before.is_some(), more)
    } else {
        (more, after.is_some())
    };
    Ok(Page {
        info: PageInfo {
            has_next_page,
            has_previous_page,
            start_cursor: rows.first().map(|(c, _)| c.clone()),
            end_cursor: rows.last().map(|(c, _)| c.clone()),
        },
        rows,
    })
}

/// The timeline of `lead` (only `kinds`, when given), one page.
pub(crate) async fn timeline_of(
    ctx: &Context<'_>,
    lead: &str,
    kinds: Option<&[TimelineKind]>,
    args: &PageArgs,
) -> Result<TimelineEntryConnection> {
    let all = loaders(ctx)
        .load_one(TimelineOf {
            lead: lead.to_string(),
        })
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or_default();
    let entries: Vec<TimelineEntry> = all
        .iter()
        .filter(|e| kinds.is_none_or(|k| k.contains(&e.kind)))
        .cloned()
        .collect();
    let page = page(&entries, args)?;
    let total = Total::known(entries.len() as i64);
    Ok(TimelineEntryConnection::from_page(page, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: i64, kind: TimelineKind, id: &str) -> TimelineEntry {
        TimelineEntry {
            at,
            kind,
            id: id.into(),
            summary: None,
            from_state: None,
            to_state: None,
        }
    }

    fn args(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> PageArgs {
        PageArgs {
            first,
            after,
            last,
            before,
        }
    }

    fn ids(page: &Page<TimelineEntry>) -> Vec<&str> {
        page.rows.iter().map(|(_, e)| e.id.as_str()).collect()
    }

    #[test]
    fn pages_forward_and_backward_cover_the_list_once_in_order() {
        let list = vec![
            entry(1, TimelineKind::Call, "a"),
            entry(1, TimelineKind::StateChange, "a"),
            entry(2, TimelineKind::DispositionChange, "7"),
            entry(3, TimelineKind::CallbackRequested, "c"),
            entry(9, TimelineKind::CallbackDue, "c"),
        ];
        let mut forward = Vec::new();
        let mut after = None;
        loop {
            let p = page(&list, &args(Some(2), after.clone(), None, None)).unwrap();
            forward.extend(ids(&p).into_iter().map(String::from));
            assert_eq!(p.info.has_previous_page, after.is_some());
            if !p.info.has_next_page {
                break;
            }
            after = p.info.end_cursor.clone();
        }
        assert_eq!(forward, ["a", "a", "7", "c", "c"]);
        let mut backward = Vec::new();
        let mut before = None;
        loop {
            let p = page(&list, &args(None, None, Some(2), before.clone())).unwrap();
            let mut chunk: Vec<String> = ids(&p).into_iter().map(String::from).collect();
            chunk.extend(backward);
            backward = chunk;
            if !p.info.has_previous_page {
                break;
            }
            before = p.info.start_cursor.clone();
        }
        assert_eq!(backward, forward);
        let bad = page(&list, &args(Some(1), Some("x".into()), None, None));
        assert!(bad.is_err());
    }
}
