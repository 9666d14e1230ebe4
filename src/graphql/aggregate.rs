//! Aggregates: dispositions per bucket, the lead funnel, call statistics.
//! They take the same filters as the lists, so a dashboard's numbers and
//! its drill-down list agree.

use super::engine::connection::Total;
use super::engine::filter::{condition_of, every_level, DateTimeFilter};
use super::engine::resource::time;
use super::resources::activity::ActivityFilter;
use super::resources::lead::LeadFilter;
use super::resources::{condition, reader};
use crate::error::ApiError;
use crate::store::read::Reader;
use crate::store::rollup::CONNECTED;
use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::activity_rollup::Entity as ActivityRollup;
use entity::{activity, conversation, lead, tool_call};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};

const HOUR: i64 = 3_600_000;
const ROLLUP_HOUR: i64 = crate::store::rollup::HOUR;
const ROLLUP_DAY: i64 = crate::store::rollup::DAY;
const ROLLUP_LONG: i64 = crate::store::rollup::LONG;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 1970-01-05, the first Monday after the epoch.
const FIRST_MONDAY: i64 = 4 * DAY;

/// A time bucket; buckets start at UTC boundaries (WEEK: Monday 00:00 UTC).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimeBucket {
    Hour,
    Day,
    Week,
}

/// How many activities (or leads) have a disposition.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct DispositionCount {
    /// The disposition (null: none yet).
    pub disposition: Option<String>,
    /// The disposition's type, as sent.
    pub disposition_type: Option<String>,
    /// Start of the time bucket (when a bucket was asked for).
    pub bucket_start: Option<DateTime<Utc>>,
    /// How many.
    pub count: i64,
}

/// Call statistics over a set of activities.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct CallStats {
    /// Call activities (`type` "call").
    pub attempts: i64,
    /// Calls that connected: `metadata.isConnected` when sent, else a
    /// conversation present, else `callStatus` "completed".
    pub connected: i64,
    /// connected / attempts (0 when there were no attempts).
    pub connect_rate: f64,
    /// Mean `turnCount` over the conversations of these activities.
    pub average_turn_count: Option<f64>,
    /// Tool calls made in these activities.
    pub tool_calls: i64,
}

fn bucket_expr(bucket: TimeBucket) -> Expr {
    bucket_of(Expr::col(activity::Column::Timestamp), bucket)
}

/// The start of `ts`'s bucket (ts in epoch ms; an hour's start gives the
/// same bucket as any moment in that hour).
fn bucket_of(ts: Expr, bucket: TimeBucket) -> Expr {
    match bucket {
        TimeBucket::Hour => ts.div(HOUR).mul(HOUR),
        TimeBucket::Day => ts.div(DAY).mul(DAY),
        TimeBucket::Week => ts.sub(FIRST_MONDAY).div(WEEK).mul(WEEK).add(FIRST_MONDAY),
    }
}

/// A row of disposition counts: disposition, type, bucket start, count.
type CountRow = (Option<String>, Option<String>, Option<i64>, i64);

fn counts(rows: Vec<CountRow>) -> Vec<DispositionCount> {
    rows.into_iter()
        .map(|(d, t, b, count)| DispositionCount {
            disposition: d,
            disposition_type: t,
            bucket_start: b.map(time),
            count,
        })
        .collect()
}

/// Activities per analysis disposition (activities without one are not
/// counted), optionally per time bucket; by bucket, then most frequent.
pub async fn disposition_counts(
    reader: &Reader,
    filter: Condition,
    bucket: Option<TimeBucket>,
) -> async_graphql::Result<Vec<DispositionCount>> {
    use activity::Column as C;
    let mut q = reader
        .find::<activity::Entity>()
        .filter(filter)
        .filter(C::AnalysisDisposition.is_not_null())
        .select_only()
        .column(C::AnalysisDisposition)
        .column(C::AnalysisDispositionType);
    match bucket {
        Some(b) => {
            q = q
                .column_as(bucket_expr(b), "bucket")
                .group_by(Expr::col("bucket"))
                .order_by_asc(Expr::col("bucket"));
        }
        None => q = q.column_as(Expr::val(Option::<i64>::None), "bucket"),
    }
    let q = q
        .column_as(Expr::cust("COUNT(*)"), "count")
        .group_by(C::AnalysisDisposition)
        .group_by(C::AnalysisDispositionType)
        .order_by_desc(Expr::cust("COUNT(*)"))
        .order_by_asc(C::AnalysisDisposition)
        .order_by_asc(C::AnalysisDispositionType);
    let rows: Vec<CountRow> = match reader.db().get_database_backend() {
        DbBackend::Sqlite => one_json_row(reader, q.into_query()).await?,
        _ => q
            .into_tuple()
            .all(reader.db())
            .await
            .map_err(|e| ApiError::database(&e))?,
    };
    Ok(counts(rows))
}

/// How the activity rollup answers a filter: the whole periods, days and
/// hours it counts, and the activities at a window's ragged ends (before
/// its first whole hour, after its last) counted one by one.
pub struct RollupPlan {
    /// The rows of `activity_rollups` for each run of whole periods of one
    /// span (under the name `activities`, see [`rolled`]): each one range
    /// of the index (project, span, start) when the filter names one
    /// project.
    runs: Vec<Condition>,
    /// The activities of each ragged end of the window.
    ends: Vec<ActivityFilter>,
}

impl RollupPlan {
    /// The rows of the whole periods, `columns` of each: one SELECT per
    /// run, under UNION ALL. With the runs under one OR, SQLite found each
    /// run's rows in the covering index and then read every row again by
    /// its key (a "MULTI-INDEX OR"): a week's rows cost 0.34 ms instead of
    /// 0.08 at 100,000 leads. None: no whole period.
    fn periods(&self, columns: impl Fn(&mut SelectStatement)) -> Option<SelectStatement> {
        union_all(self.runs.iter().map(|run| {
            let mut rows = Query::select();
            rows.from_as(ActivityRollup, activity::Entity)
                .cond_where(run.clone());
            columns(&mut rows);
            rows
        }))
    }

    /// The activities of the ragged ends as one filter (None: none).
    fn ends_filter(&self) -> Option<ActivityFilter> {
        match self.ends.len() {
            0 => None,
            1 => self.ends.first().cloned(),
            _ => Some(ActivityFilter {
                or: Some(self.ends.clone()),
                ..Default::default()
            }),
        }
    }
}

/// A column of `activity_rollups` under the name the plan's rows have,
/// `activities`: a row holds the project, disposition and type of the
/// activities it counts under the activities' own column names, so the
/// activity filter's condition, folded by the same code as for the list,
/// holds for a row exactly when it holds for the activities it counts.
fn rolled(column: entity::activity_rollup::Column) -> Expr {
    Expr::col((activity::Entity, column))
}

/// Whether the activity rollup's rows hold what `f` asks: at every level
/// (`and`, `or`, `not` included) it filters on `projectId`, `disposition`
/// and `dispositionType` only. (A window at the top is taken apart first,
/// see [`rollup_plan`].)
fn activity_rollup_answers(f: &ActivityFilter) -> bool {
    every_level(f, &|l: &ActivityFilter| {
        *l == ActivityFilter {
            project_id: l.project_id.clone(),
            disposition: l.disposition.clone(),
            disposition_type: l.disposition_type.clone(),
            and: l.and.clone(),
            or: l.or.clone(),
            not: l.not.clone(),
            ..Default::default()
        }
    })
}

/// `selects` under UNION ALL, as one statement (None: no select).
fn union_all(selects: impl IntoIterator<Item = SelectStatement>) -> Option<SelectStatement> {
    use sea_orm::sea_query::UnionType;
    let mut selects = selects.into_iter();
    let mut all = selects.next()?;
    for select in selects {
        all.union(UnionType::All, select);
    }
    Some(all)
}

/// A run of whole periods of one span: starts from `.1` (inclusive) to
/// `.2` (exclusive), None: unbounded.
type Periods = (i64, Option<i64>, Option<i64>);

/// Cover the window [lo, hi) with whole periods of the first span, its
/// edges with the next spans, and what is left with raw time ranges.
fn cover(
    lo: Option<i64>,
    hi: Option<i64>,
    spans: &[i64],
    periods: &mut Vec<Periods>,
    ends: &mut Vec<(i64, i64)>,
) {
    let Some((&span, smaller)) = spans.split_first() else {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo < hi {
                ends.push((lo, hi));
            }
        }
        return;
    };
    // Times here are after 1970: SQL's division is a floor for them.
    let first = lo.map(|t| t.saturating_add(span - 1) / span * span);
    let end = hi.map(|t| t / span * span);
    if let (Some(first), Some(end)) = (first, end) {
        if first >= end {
            return cover(lo, hi, smaller, periods, ends);
        }
    }
    periods.push((span, first, end));
    if let (Some(lo), Some(first)) = (lo, first) {
        cover(Some(lo), Some(first), smaller, periods, ends);
    }
    if let (Some(end), Some(hi)) = (end, hi) {
        cover(Some(end), Some(hi), smaller, periods, ends);
    }
}

/// Whether, and how, the rollup can answer `filter` exactly: for a reader
/// of every project (a scoped reader sees activities by their lead's
/// project, which the rollup does not record), and a filter on
/// `projectId`, `disposition` and `dispositionType` under any `and`, `or`
/// and `not` (see [`activity_rollup_answers`]) with at most a `timestamp`
/// window (`gte` or `gt`, `lt` or `lte`) at its top, nothing else. Whole
/// periods of 32 days come from their rows (unless counting per bucket),
/// whole days from the day rows (unless counting per HOUR), whole hours
/// from the hour rows. None: count the activities.
pub fn rollup_plan(
    reader: &Reader,
    filter: Option<&ActivityFilter>,
    bucket: Option<TimeBucket>,
) -> Result<Option<RollupPlan>> {
    use entity::activity_rollup::Column as R;
    if reader.projects().is_some() {
        return Ok(None);
    }
    let default = ActivityFilter::default();
    let f = filter.unwrap_or(&default);
    // Everything but the window at the top, as the rows hold it.
    let outside_window = ActivityFilter {
        timestamp: None,
        ..f.clone()
    };
    if !activity_rollup_answers(&outside_window) {
        return Ok(None);
    }
    let rows = condition_of(Some(&outside_window), reader)?;
    let (mut from, mut until) = (None, None);
    if let Some(t) = &f.timestamp {
        let ms = |at: &Option<DateTime<Utc>>| at.map(|at| at.timestamp_millis());
        if t.eq.is_some() || t.is_null.is_some() {
            return Ok(None);
        }
        // Times are whole milliseconds: `gt t` is `gte t + 1`, `lte t` is
        // `lt t + 1`.
        from = match (ms(&t.gte), ms(&t.gt)) {
            (Some(_), Some(_)) => return Ok(None),
            (gte, gt) => gte.or(gt.map(|t| t.saturating_add(1))),
        };
        until = match (ms(&t.lt), ms(&t.lte)) {
            (Some(_), Some(_)) => return Ok(None),
            (lt, lte) => lt.or(lte.map(|t| t.saturating_add(1))),
        };
        if from.is_some_and(|t| t < 0) || until.is_some_and(|t| t < 0) {
            return Ok(None);
        }
    }
    let spans: &[i64] = match bucket {
        Some(TimeBucket::Hour) => &[ROLLUP_HOUR],
        Some(_) => &[ROLLUP_DAY, ROLLUP_HOUR],
        // Counted whole: the longest periods first.
        None => &[ROLLUP_LONG, ROLLUP_DAY, ROLLUP_HOUR],
    };
    let (mut runs, mut gaps) = (Vec::new(), Vec::new());
    cover(from, until, spans, &mut runs, &mut gaps);
    // The filter's condition in each run, so with one project each is one
    // range of the index (project, span, start).
    let runs = runs
        .into_iter()
        .map(|(span, first, end)| {
            let mut run = rows.clone().add(rolled(R::Span).eq(span));
            if let Some(first) = first {
                run = run.add(rolled(R::Start).gte(first));
            }
            if let Some(end) = end {
                run = run.add(rolled(R::Start).lt(end));
            }
            run
        })
        .collect();
    let ends = gaps
        .into_iter()
        .map(|(lo, hi)| ActivityFilter {
            timestamp: Some(DateTimeFilter {
                gte: DateTime::from_timestamp_millis(lo),
                lt: DateTime::from_timestamp_millis(hi),
                ..Default::default()
            }),
            ..f.clone()
        })
        .collect();
    Ok(Some(RollupPlan { runs, ends }))
}

/// [`disposition_counts`] by a [`RollupPlan`]: the rollup's whole periods
/// plus the activities of each ragged end (`ends`, the plan's filters
/// folded into SQL), added up and ordered in one statement: the same rows
/// in the same order.
pub async fn disposition_counts_rolled_up(
    reader: &Reader,
    plan: &RollupPlan,
    ends: Vec<Condition>,
    bucket: Option<TimeBucket>,
) -> async_graphql::Result<Vec<DispositionCount>> {
    use entity::activity_rollup::Column as R;
    let bucket_at = |ts: Expr| match bucket {
        Some(b) => bucket_of(ts, b),
        None => Expr::val(Option::<i64>::None),
    };
    let periods = plan.periods(|rows| {
        rows.and_where(rolled(R::AnalysisDisposition).is_not_null())
            .expr_as(rolled(R::AnalysisDisposition), Alias::new("d"))
            .expr_as(rolled(R::AnalysisDispositionType), Alias::new("t"))
            .expr_as(bucket_at(rolled(R::Start)), Alias::new("bucket"))
            .expr_as(rolled(R::Activities), Alias::new("n"));
    });
    let ends = ends.into_iter().map(|end| {
        use activity::Column as C;
        reader
            .find::<activity::Entity>()
            .filter(end)
            .filter(C::AnalysisDisposition.is_not_null())
            .select_only()
            .column_as(C::AnalysisDisposition, "d")
            .column_as(C::AnalysisDispositionType, "t")
            .column_as(bucket_at(Expr::col(C::Timestamp)), "bucket")
            .column_as(Expr::cust("CAST(1 AS BIGINT)"), "n")
            .into_query()
    });
    // No whole period and no ragged end: an empty window counts nothing.
    let Some(parts) = union_all(periods.into_iter().chain(ends)) else {
        return Ok(Vec::new());
    };
    let total = Expr::cust("CAST(SUM(n) AS BIGINT)");
    // Named as the exact statement names them, for `one_json_row`.
    let mut q = Query::select();
    q.expr_as(Expr::col("d"), Alias::new("analysis_disposition"))
        .expr_as(Expr::col("t"), Alias::new("analysis_disposition_type"))
        .column("bucket")
        .expr_as(total.clone(), Alias::new("count"))
        .from_subquery(parts, Alias::new("counted"))
        .group_by_col("d")
        .group_by_col("t")
        .group_by_col("bucket")
        .and_having(Expr::cust("SUM(n) > 0"));
    if bucket.is_some() {
        q.order_by("bucket", sea_orm::Order::Asc);
    }
    q.order_by_expr(total, sea_orm::Order::Desc)
        .order_by("d", sea_orm::Order::Asc)
        .order_by("t", sea_orm::Order::Asc);
    let rows: Vec<CountRow> = match reader.db().get_database_backend() {
        DbBackend::Sqlite => one_json_row(reader, q).await?,
        _ => {
            let rows = reader
                .rollups()
                .query_all(&q)
                .await
                .map_err(|e| ApiError::database(&e))?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get_by_index(0)?,
                        row.try_get_by_index(1)?,
                        row.try_get_by_index(2)?,
                        row.try_get_by_index(3)?,
                    ))
                })
                .collect::<Result<_, sea_orm::DbErr>>()
                .map_err(|e| ApiError::database(&e))?
        }
    };
    Ok(counts(rows))
}

/// The rows of `grouped` (disposition, type, bucket, count), on SQLite as
/// one JSON array in a single row: sqlx hands every row over from SQLite's
/// connection thread on its own, which for a week of daily counts (about
/// 50 small rows) cost as much as the grouping itself.
async fn one_json_row<T: serde::de::DeserializeOwned>(
    reader: &Reader,
    grouped: SelectStatement,
) -> async_graphql::Result<Vec<T>> {
    let mut outer = Query::select();
    outer
        .expr(Expr::cust(
            "json_group_array(json_array(analysis_disposition, analysis_disposition_type, bucket, count))",
        ))
        .from_subquery(grouped, Alias::new("grouped"));
    let row = reader
        .db()
        .query_one(&outer)
        .await
        .map_err(|e| ApiError::database(&e))?;
    let json: String = match row {
        Some(row) => row
            .try_get_by_index(0)
            .map_err(|e| ApiError::database(&e))?,
        None => return Ok(Vec::new()),
    };
    serde_json::from_str(&json).map_err(|e| {
        tracing::error!(error = %e, "disposition counts: unreadable JSON from SQLite");
        async_graphql::Error::new("internal error while reading the database")
    })
}

/// Leads per current disposition (leads without one form a group with a
/// null disposition), most frequent first.
pub async fn lead_funnel(
    reader: &Reader,
    filter: Condition,
) -> async_graphql::Result<Vec<DispositionCount>> {
    use lead::Column as C;
    let rows: Vec<(Option<String>, Option<String>, i64)> = reader
        .find::<lead::Entity>()
        .filter(filter)
        .select_only()
        .column(C::Disposition)
        .column(C::DispositionType)
        .column_as(Expr::cust("COUNT(*)"), "count")
        .group_by(C::Disposition)
        .group_by(C::DispositionType)
        .order_by_desc(Expr::cust("COUNT(*)"))
        .order_by_asc(C::Disposition)
        .order_by_asc(C::DispositionType)
        .into_tuple()
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?;
    Ok(counts(
        rows.into_iter()
            .map(|(d, t, count)| (d, t, None, count))
            .collect(),
    ))
}

/// Whether the lead rollup can answer `f`: at every level (`and`, `or`,
/// `not` included) it filters on `projectId`, `disposition` and
/// `dispositionType` only, the fields a rollup row holds.
fn lead_rollup_answers(f: &LeadFilter) -> bool {
    every_level(f, &|l: &LeadFilter| {
        *l == LeadFilter {
            project_id: l.project_id.clone(),
            disposition: l.disposition.clone(),
            disposition_type: l.disposition_type.clone(),
            and: l.and.clone(),
            or: l.or.clone(),
            not: l.not.clone(),
            ..Default::default()
        }
    })
}

/// The rows of `lead_rollups` that count exactly the leads `filter`
/// selects, when the rollup can answer it: `FROM lead_rollups AS leads
/// WHERE <the lead list's own condition>`. A row holds the project,
/// disposition and type of the leads it counts under the leads' column
/// names, so the condition the list uses, folded by the same code (the
/// same comparisons, case folding, `and`/`or`/`not` and NULLs), holds for
/// a row exactly when it holds for the leads it counts. Leads are visible
/// by their project, which the row holds, so a scoped reader is answered
/// too. None: count the leads.
pub fn lead_rollup_rows(
    reader: &Reader,
    filter: Option<&LeadFilter>,
) -> Result<Option<SelectStatement>> {
    use crate::store::read::Scoped;
    if !filter.is_none_or(lead_rollup_answers) {
        return Ok(None);
    }
    let mut cond = Condition::all().add(condition_of(filter, reader)?);
    if let Some(projects) = reader.projects() {
        cond = cond.add(lead::Entity::visible(projects));
    }
    let mut rows = Query::select();
    rows.from_as(entity::lead_rollup::Entity, lead::Entity)
        .cond_where(cond);
    Ok(Some(rows))
}

/// `CAST(COALESCE(SUM(column), 0) AS BIGINT)`: a rollup's sum as a number
/// on both databases (PostgreSQL sums BIGINTs as NUMERIC).
pub(crate) fn sum_of(column: &str) -> Expr {
    Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
}

/// The lead rollup's count column, under [`lead_rollup_rows`]' name for
/// the table.
const LEADS_COUNTED: &str = "\"leads\".\"leads\"";

/// The `totalCount` of a root list of leads from the lead rollup, when it
/// can answer `filter` (see [`lead_rollup_rows`]): a project's leads, or
/// its leads with some dispositions, counted in a few rows whatever their
/// number. None: count the leads.
pub fn leads_total(reader: &Reader, filter: Option<&LeadFilter>) -> Result<Option<Total>> {
    let Some(mut rows) = lead_rollup_rows(reader, filter)? else {
        return Ok(None);
    };
    rows.expr(sum_of(LEADS_COUNTED));
    Ok(Some(Total::number(reader.rollups(), rows)))
}

/// The `totalCount` of a root list of activities from the activity
/// rollup, when it can answer `filter` (see [`rollup_plan`]: a reader of
/// every project, a filter on `projectId`, `disposition` and
/// `dispositionType` with a window at its top): the whole
/// periods' rows plus the activities at the window's ragged ends
/// counted, added up in one statement. None: count the activities.
pub fn activities_total(reader: &Reader, filter: Option<&ActivityFilter>) -> Result<Option<Total>> {
    use entity::activity_rollup::Column as R;
    let Some(plan) = rollup_plan(reader, filter, None)? else {
        return Ok(None);
    };
    let periods = plan.periods(|rows| {
        rows.expr_as(rolled(R::Activities), Alias::new("n"));
    });
    let ends = plan
        .ends
        .iter()
        .map(|end| -> Result<SelectStatement> {
            Ok(reader
                .find::<activity::Entity>()
                .filter(condition_of(Some(end), reader)?)
                .select_only()
                .column_as(Expr::cust("COUNT(*)"), "n")
                .into_query())
        })
        .collect::<Result<Vec<_>>>()?;
    // One statement (one round trip): the periods' rows and each end's
    // count, added up.
    let Some(parts) = union_all(periods.into_iter().chain(ends)) else {
        return Ok(Some(Total::known(0)));
    };
    let mut sum = Query::select();
    sum.expr(sum_of("n"))
        .from_subquery(parts, Alias::new("parts"));
    Ok(Some(Total::number(reader.rollups(), sum)))
}

/// [`lead_funnel`] from the lead rollup's rows from [`lead_rollup_rows`]:
/// the same rows in the same order.
pub async fn lead_funnel_rolled_up(
    reader: &Reader,
    mut rows: SelectStatement,
) -> async_graphql::Result<Vec<DispositionCount>> {
    use lead::Column as C;
    let total = sum_of(LEADS_COUNTED);
    rows.column((lead::Entity, C::Disposition))
        .column((lead::Entity, C::DispositionType))
        .expr(total.clone())
        .group_by_col((lead::Entity, C::Disposition))
        .group_by_col((lead::Entity, C::DispositionType))
        .and_having(Expr::cust(format!("SUM({LEADS_COUNTED}) > 0")))
        .order_by_expr(total, sea_orm::Order::Desc)
        .order_by((lead::Entity, C::Disposition), sea_orm::Order::Asc)
        .order_by((lead::Entity, C::DispositionType), sea_orm::Order::Asc);
    let found = reader
        .rollups()
        .query_all(&rows)
        .await
        .map_err(|e| ApiError::database(&e))?;
    let rows = found
        .iter()
        .map(|row| {
            Ok((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                None,
                row.try_get_by_index(2)?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(|e| ApiError::database(&e))?;
    Ok(counts(rows))
}

/// What [`CallStats`] is made of: sums, which add up across the parts of
/// a window (the rollup's periods and the activities at its ends).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallSums {
    calls: i64,
    connected: i64,
    /// Conversations with a turn count, and their turns.
    turn_counts: i64,
    turns: i64,
    tool_calls: i64,
}

impl std::ops::Add for CallSums {
    type Output = CallSums;
    fn add(self, o: CallSums) -> CallSums {
        CallSums {
            calls: self.calls + o.calls,
            connected: self.connected + o.connected,
            turn_counts: self.turn_counts + o.turn_counts,
            turns: self.turns + o.turns,
            tool_calls: self.tool_calls + o.tool_calls,
        }
    }
}

impl CallSums {
    fn stats(self) -> CallStats {
        let rate = |n: i64, of: i64| (of != 0).then(|| n as f64 / of as f64);
        CallStats {
            attempts: self.calls,
            connected: self.connected,
            connect_rate: rate(self.connected, self.calls).unwrap_or(0.0),
            average_turn_count: rate(self.turns, self.turn_counts),
            tool_calls: self.tool_calls,
        }
    }
}

/// [`CallSums`] of the activities `filter` selects, counted from them.
pub async fn call_sums(reader: &Reader, filter: Condition) -> async_graphql::Result<CallSums> {
    use activity::Column as C;
    let (calls, connected): (i64, i64) = reader
        .find::<activity::Entity>()
        .filter(filter.clone())
        .filter(C::Type.eq("call"))
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "attempts")
        .column_as(
            Expr::cust(format!("CAST(COALESCE(SUM({CONNECTED}), 0) AS BIGINT)")),
            "connected",
        )
        .into_tuple()
        .one(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or_default();
    let matching = reader
        .find::<activity::Entity>()
        .filter(filter)
        .select_only()
        .column(C::Id)
        .into_query();
    let (turn_counts, turns): (i64, i64) = reader
        .find::<conversation::Entity>()
        .filter(conversation::Column::ActivityId.in_subquery(matching.clone()))
        .select_only()
        .column_as(Expr::cust("COUNT(turn_count)"), "turn_counts")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(turn_count), 0) AS BIGINT)"),
            "turns",
        )
        .into_tuple()
        .one(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or_default();
    let tool_calls: i64 = reader
        .find::<tool_call::Entity>()
        .filter(tool_call::Column::ActivityId.in_subquery(matching))
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .into_tuple()
        .one(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or(0);
    Ok(CallSums {
        calls,
        connected,
        turn_counts,
        turns,
        tool_calls,
    })
}

/// [`CallSums`] of a [`RollupPlan`]'s whole periods, from the rollup.
async fn call_sums_rolled_up(
    reader: &Reader,
    plan: &RollupPlan,
) -> async_graphql::Result<CallSums> {
    use entity::activity_rollup::Column as R;
    const SUMMED: [(R, &str); 5] = [
        (R::Calls, "calls"),
        (R::Connected, "connected"),
        (R::TurnCounts, "turn_counts"),
        (R::Turns, "turns"),
        (R::ToolCalls, "tool_calls"),
    ];
    let Some(periods) = plan.periods(|rows| {
        for (column, name) in SUMMED {
            rows.expr_as(rolled(column), Alias::new(name));
        }
    }) else {
        return Ok(CallSums::default());
    };
    let mut sums = Query::select();
    for (_, name) in SUMMED {
        sums.expr(sum_of(name));
    }
    sums.from_subquery(periods, Alias::new("periods"));
    let row = reader
        .rollups()
        .query_one(&sums)
        .await
        .map_err(|e| ApiError::database(&e))?;
    let (calls, connected, turn_counts, turns, tool_calls): (i64, i64, i64, i64, i64) = match row {
        Some(row) => (|| {
            Ok::<_, sea_orm::DbErr>((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
                row.try_get_by_index(3)?,
                row.try_get_by_index(4)?,
            ))
        })()
        .map_err(|e| ApiError::database(&e))?,
        None => Default::default(),
    };
    Ok(CallSums {
        calls,
        connected,
        turn_counts,
        turns,
        tool_calls,
    })
}

/// The root fields for aggregates.
#[derive(Default)]
pub struct AggregateQuery;

#[Object]
impl AggregateQuery {
    /// Call outcomes: activities per analysis disposition (activities
    /// without one are not counted), per HOUR / DAY / WEEK when `bucket`
    /// is given (UTC; weeks start on Monday).
    async fn disposition_counts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
        bucket: Option<TimeBucket>,
    ) -> Result<Vec<DispositionCount>> {
        let reader = reader(ctx);
        match rollup_plan(reader, filter.as_ref(), bucket)? {
            Some(plan) => {
                let ends = plan
                    .ends
                    .iter()
                    .map(|end| condition(ctx, Some(end)))
                    .collect::<Result<_>>()?;
                disposition_counts_rolled_up(reader, &plan, ends, bucket).await
            }
            None => {
                let cond = condition(ctx, filter.as_ref())?;
                disposition_counts(reader, cond, bucket).await
            }
        }
    }

    /// Leads per current disposition, most frequent first; leads without a
    /// disposition yet are one group with a null disposition.
    async fn lead_funnel(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilter>,
    ) -> Result<Vec<DispositionCount>> {
        let reader = reader(ctx);
        match lead_rollup_rows(reader, filter.as_ref())? {
            Some(rows) => lead_funnel_rolled_up(reader, rows).await,
            None => {
                let cond = condition(ctx, filter.as_ref())?;
                lead_funnel(reader, cond).await
            }
        }
    }

    /// Attempts, connections, connect rate, mean turns and tool calls over
    /// the activities the filter selects.
    async fn call_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
    ) -> Result<CallStats> {
        let reader = reader(ctx);
        let sums = match rollup_plan(reader, filter.as_ref(), None)? {
            Some(plan) => {
                let periods = call_sums_rolled_up(reader, &plan).await?;
                match plan.ends_filter() {
                    Some(ends) => periods + call_sums(reader, condition(ctx, Some(&ends))?).await?,
                    None => periods,
                }
            }
            None => call_sums(reader, condition(ctx, filter.as_ref())?).await?,
        };
        Ok(sums.stats())
    }
}
