//! The rollups: current activities counted per project, period (each UTC
//! hour, and each UTC day), analysis disposition and disposition type,
//! with what `callStats` adds up of them ([`Measures`]:
//! `activity_rollups`), leads counted per project and current
//! disposition (`lead_rollups`), and activities counted per extracted
//! variable value and project (`variable_rollups`).
//!
//! Ingest keeps them in the batch's transaction: each activity a batch
//! stores adds its measures to its keys and, when it replaces an older
//! version, takes the old version's measures from the old version's
//! keys (and its variables, from theirs); each lead it writes moves from
//! its stored projection's key (if it existed) to its new one. So
//! duplicates and stale versions change nothing, a newer version moves its
//! counts, and the order of delivery does not matter. `reproject`, and the
//! first start after a migration that adds one, count them afresh instead
//! ([`rebuild`]).

use super::projection::LeadFacts;
use entity::{activity, activity_rollup, lead, lead_rollup, variable, variable_rollup};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;

/// An hour in epoch milliseconds.
pub const HOUR: i64 = 3_600_000;
/// A day in epoch milliseconds.
pub const DAY: i64 = 24 * HOUR;
/// 32 days in epoch milliseconds: the periods that answer counts without
/// a time bucket. An all-time count then reads a row per 32 days instead
/// of one per day (a million generated leads span about 1,000 days, and
/// their all-time counts, from day rows, took ten times as long as at
/// 100,000 leads).
pub const LONG: i64 = 32 * DAY;
/// The periods counted: each activity is counted in its hour, its day and
/// its 32 days (each aligned on the epoch).
pub const SPANS: [i64; 3] = [HOUR, DAY, LONG];

/// What a rollup's row counts: the parts of its key, which name its row
/// by [`Rollup::key`]: a short, ordered start ([`Rollup::order`]) and
/// their digest (the parts may be null, and long: PostgreSQL bounds an
/// index entry).
pub trait Rollup: Eq + Hash + Serialize {
    type Entity: EntityTrait;
    /// What a row counts.
    type Counts: Counts;
    /// The row's primary key column ([`Rollup::key`]).
    const KEY: <Self::Entity as EntityTrait>::Column;
    /// Its count columns, each added to on conflict; the first is
    /// [`Counts::items`] (a row counting none is deleted).
    const COUNTS: &'static [<Self::Entity as EntityTrait>::Column];
    /// The row for these parts, named `key` ([`Rollup::key`]), counting
    /// `counts`.
    fn row(self, key: String, counts: Self::Counts) -> <Self::Entity as EntityTrait>::Model;

    /// The start of the row's key, written to `key`: what puts the rows
    /// one batch changes next to each other in the table. A digest alone
    /// scattered them, a page each, and each changed page is written
    /// again at every commit (on SQLite the rollups' pages were 3.7 of
    /// the 28 pages a delivery wrote). It only orders; the digest names.
    fn order(&self, key: &mut String);

    /// The row's key: [`Rollup::order`], then the first 128 bits of the
    /// digest of all the parts (so two keys are equal exactly when their
    /// parts are).
    fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut key = String::with_capacity(96);
        self.order(&mut key);
        key.push_str(&hex::encode(&Sha256::digest(text.as_bytes())[..16]));
        key
    }
}

/// The first `max` bytes of `text` at most, cut at a character.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The counts of a rollup's row, added and taken away together.
pub trait Counts: Copy + Default + PartialEq + std::fmt::Debug {
    /// `self += sign * other`.
    fn add(&mut self, other: Self, sign: i64);
    /// What the row counts the items of (activities, leads): its first
    /// count column.
    fn items(&self) -> i64;
}

impl Counts for i64 {
    fn add(&mut self, other: i64, sign: i64) {
        *self += sign * other;
    }

    fn items(&self) -> i64 {
        *self
    }
}

/// What an activity adds to its rows: itself, and what `callStats` adds
/// up of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measures {
    pub activities: i64,
    /// 1 for a call (`type` "call").
    pub calls: i64,
    /// 1 for a call that connected (see [`connected`]).
    pub connected: i64,
    /// 1 when its conversation has a turn count...
    pub turn_counts: i64,
    /// ...which is this.
    pub turns: i64,
    /// Its tool calls.
    pub tool_calls: i64,
}

impl Measures {
    /// One activity's measures, given its conversation's turn count and
    /// its number of tool calls.
    pub fn of(f: &LeadFacts, turn_count: Option<i64>, tool_calls: i64) -> Measures {
        let call = f.r#type.as_deref() == Some("call");
        Measures {
            activities: 1,
            calls: i64::from(call),
            connected: i64::from(call && connected(f)),
            turn_counts: i64::from(turn_count.is_some()),
            turns: turn_count.unwrap_or(0),
            tool_calls,
        }
    }
}

impl Counts for Measures {
    fn add(&mut self, o: Measures, sign: i64) {
        self.activities += sign * o.activities;
        self.calls += sign * o.calls;
        self.connected += sign * o.connected;
        self.turn_counts += sign * o.turn_counts;
        self.turns += sign * o.turns;
        self.tool_calls += sign * o.tool_calls;
    }

    fn items(&self) -> i64 {
        self.activities
    }
}

/// Whether an activity connected, as `callStats` counts it:
/// `metadata.isConnected` when sent, else a conversation present, else
/// `callStatus` "completed". [`CONNECTED`] says the same in SQL.
pub fn connected(f: &LeadFacts) -> bool {
    f.is_connected
        .unwrap_or(f.has_conversation || f.call_status.as_deref() == Some("completed"))
}

/// [`connected`] as SQL over an activity's columns: 1 or 0.
pub const CONNECTED: &str = "(CASE WHEN is_connected IS NOT NULL THEN \
     (CASE WHEN is_connected THEN 1 ELSE 0 END) WHEN has_conversation THEN 1 \
     WHEN call_status = 'completed' THEN 1 ELSE 0 END)";

/// What an activity is counted under. The fields' names are part of the
/// row's digest, so they stay as they are though the columns are named
/// as `activities` names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Key {
    pub project_id: Option<String>,
    /// The period's length (one of [`SPANS`]).
    pub span: i64,
    /// Its start: `timestamp / span * span`, as SQL computes it.
    pub start: i64,
    pub disposition: Option<String>,
    pub disposition_type: Option<String>,
}

impl Key {
    /// The keys an activity is counted under, one per span.
    pub fn of(f: &LeadFacts) -> impl Iterator<Item = Key> + '_ {
        SPANS.into_iter().map(|span| Key {
            project_id: f.project_id.clone(),
            span,
            start: f.timestamp / span * span,
            disposition: f.analysis_disposition.clone(),
            disposition_type: f.analysis_disposition_type.clone(),
        })
    }
}

impl Rollup for Key {
    type Entity = activity_rollup::Entity;
    type Counts = Measures;
    const KEY: activity_rollup::Column = activity_rollup::Column::Key;
    const COUNTS: &'static [activity_rollup::Column] = {
        use activity_rollup::Column as R;
        &[
            R::Activities,
            R::Calls,
            R::Connected,
            R::TurnCounts,
            R::Turns,
            R::ToolCalls,
        ]
    };

    fn row(self, key: String, m: Measures) -> activity_rollup::Model {
        activity_rollup::Model {
            key,
            project_id: self.project_id,
            span: self.span,
            start: self.start,
            analysis_disposition: self.disposition,
            analysis_disposition_type: self.disposition_type,
            activities: m.activities,
            calls: m.calls,
            connected: m.connected,
            turn_counts: m.turn_counts,
            turns: m.turns,
            tool_calls: m.tool_calls,
        }
    }

    /// Span, then the period's start: ingest runs forward in time, so a
    /// batch's activities fall in a few current periods, whose rows are
    /// then side by side. The start is shifted by 2^63 to sort as it
    /// counts when it is negative.
    fn order(&self, key: &mut String) {
        use std::fmt::Write;
        let start = (self.start as u64) ^ (1 << 63);
        let _ = write!(key, "{:x}.{start:016x}.", self.span);
    }
}

/// What a lead is counted under: its project and current disposition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LeadKey {
    pub project_id: Option<String>,
    pub disposition: Option<String>,
    pub disposition_type: Option<String>,
}

impl LeadKey {
    pub fn of(lead: &lead::Model) -> LeadKey {
        LeadKey {
            project_id: lead.project_id.clone(),
            disposition: lead.disposition.clone(),
            disposition_type: lead.disposition_type.clone(),
        }
    }
}

impl Rollup for LeadKey {
    type Entity = lead_rollup::Entity;
    type Counts = i64;
    const KEY: lead_rollup::Column = lead_rollup::Column::Key;
    const COUNTS: &'static [lead_rollup::Column] = &[lead_rollup::Column::Leads];

    fn row(self, key: String, leads: i64) -> lead_rollup::Model {
        lead_rollup::Model {
            key,
            project_id: self.project_id,
            disposition: self.disposition,
            disposition_type: self.disposition_type,
            leads,
        }
    }

    /// Nothing: a project has a row per disposition, a few in all.
    fn order(&self, _: &mut String) {}
}

/// What an activity is counted under for each variable it extracted: the
/// variable's name and value and the activity's project, as its row in
/// `variables` holds them (and read from there by these names).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, FromQueryResult)]
pub struct VariableKey {
    pub name: String,
    pub value_text: Option<String>,
    pub project_id: Option<String>,
}

impl VariableKey {
    pub fn of(row: &variable::Model) -> VariableKey {
        VariableKey {
            name: row.name.clone(),
            value_text: row.value_text.clone(),
            project_id: row.project_id.clone(),
        }
    }
}

impl Rollup for VariableKey {
    type Entity = variable_rollup::Entity;
    type Counts = i64;
    const KEY: variable_rollup::Column = variable_rollup::Column::Key;
    const COUNTS: &'static [variable_rollup::Column] = &[variable_rollup::Column::Activities];

    fn row(self, key: String, activities: i64) -> variable_rollup::Model {
        variable_rollup::Model {
            key,
            name: self.name,
            value_text: self.value_text,
            project_id: self.project_id,
            activities,
        }
    }

    /// The name and value, each cut at 48 bytes: most variables have a
    /// few values, and the many-valued ones (dates, times) mostly grow
    /// with time, so a batch's values sit together.
    fn order(&self, key: &mut String) {
        key.push_str(head(&self.name, 48));
        key.push('|');
        key.push_str(head(self.value_text.as_deref().unwrap_or(""), 48));
        key.push('|');
    }
}

/// Changes to a rollup's counts that a batch makes.
#[derive(Debug)]
pub struct Deltas<K: Rollup>(HashMap<K, K::Counts>);

impl<K: Rollup> Default for Deltas<K> {
    fn default() -> Self {
        Deltas(HashMap::new())
    }
}

impl<K: Rollup> Deltas<K> {
    /// Add `counts` to `key`'s row (`sign` 1), or take them away (-1).
    pub fn add(&mut self, key: K, counts: K::Counts, sign: i64) {
        self.0.entry(key).or_default().add(counts, sign);
    }

    /// The non-zero changes as rows to add, in key order (so concurrent
    /// batches on PostgreSQL lock shared rows in one order), and the keys
    /// of the rows whose first count went down (which may have reached
    /// zero).
    pub fn rows(self) -> (Vec<<K::Entity as EntityTrait>::Model>, Vec<String>) {
        let mut changes: Vec<(String, K, K::Counts)> = self
            .0
            .into_iter()
            .filter(|(_, n)| *n != K::Counts::default())
            .map(|(key, n)| (key.key(), key, n))
            .collect();
        changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let fell = changes
            .iter()
            .filter(|(_, _, n)| n.items() < 0)
            .map(|(name, _, _)| name.clone())
            .collect();
        let rows = changes
            .into_iter()
            .map(|(name, key, n)| key.row(name, n))
            .collect();
        (rows, fell)
    }
}

#[derive(FromQueryResult)]
struct Counted {
    project_id: Option<String>,
    start: i64,
    disposition: Option<String>,
    disposition_type: Option<String>,
    activities: i64,
    calls: i64,
    connected: i64,
    turn_counts: i64,
    turns: i64,
    tool_calls: i64,
}

/// Count every current activity and lead again into empty rollups; the
/// number of rows written. The rows are written in the order counts read
/// them (project and period; variable name, value and project), so on
/// PostgreSQL a count's rows share heap pages.
pub async fn rebuild<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Ok(rebuild_activities(db).await? + rebuild_leads(db).await? + rebuild_variables(db).await?)
}

async fn rebuild_activities<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    activity_rollup::Entity::delete_many().exec(db).await?;
    let mut written = 0;
    for span in SPANS {
        // Each activity with its conversation's turn count and its number
        // of tool calls, then added up per key: [`Measures::of`] in SQL.
        let sql = format!(
            "SELECT project_id, \"timestamp\" / {span} * {span} AS start, \
               analysis_disposition AS disposition, analysis_disposition_type AS disposition_type, \
               COUNT(*) AS activities, \
               CAST(SUM(CASE WHEN \"type\" = 'call' THEN 1 ELSE 0 END) AS BIGINT) AS calls, \
               CAST(SUM(CASE WHEN \"type\" = 'call' THEN {CONNECTED} ELSE 0 END) AS BIGINT) AS connected, \
               COUNT(turn_count) AS turn_counts, \
               CAST(COALESCE(SUM(turn_count), 0) AS BIGINT) AS turns, \
               CAST(SUM(tool_calls) AS BIGINT) AS tool_calls \
             FROM (SELECT a.project_id, a.\"timestamp\", a.analysis_disposition, \
                     a.analysis_disposition_type, a.\"type\", a.is_connected, a.has_conversation, \
                     a.call_status, \
                     (SELECT c.turn_count FROM conversations c WHERE c.activity_id = a.id) AS turn_count, \
                     (SELECT COUNT(*) FROM tool_calls t WHERE t.activity_id = a.id) AS tool_calls \
                   FROM activities a) AS measured \
             GROUP BY project_id, start, analysis_disposition, analysis_disposition_type \
             ORDER BY project_id, start"
        );
        let counted =
            Counted::find_by_statement(Statement::from_string(db.get_database_backend(), sql))
                .all(db)
                .await?;
        let counts = counted.into_iter().map(|c| {
            let key = Key {
                project_id: c.project_id,
                span,
                start: c.start,
                disposition: c.disposition,
                disposition_type: c.disposition_type,
            };
            let measures = Measures {
                activities: c.activities,
                calls: c.calls,
                connected: c.connected,
                turn_counts: c.turn_counts,
                turns: c.turns,
                tool_calls: c.tool_calls,
            };
            (key, measures)
        });
        written += insert_counts(db, counts.collect()).await?;
    }
    Ok(written)
}

#[derive(FromQueryResult)]
struct LeadsCounted {
    project_id: Option<String>,
    disposition: Option<String>,
    disposition_type: Option<String>,
    leads: i64,
}

async fn rebuild_leads<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    use lead::Column as L;
    lead_rollup::Entity::delete_many().exec(db).await?;
    let counted: Vec<LeadsCounted> = counted_by::<lead::Entity, _, _>(
        db,
        [L::ProjectId, L::Disposition, L::DispositionType],
        "leads",
    )
    .await?;
    let counts = counted.into_iter().map(|c| {
        let key = LeadKey {
            project_id: c.project_id,
            disposition: c.disposition,
            disposition_type: c.disposition_type,
        };
        (key, c.leads)
    });
    insert_counts(db, counts.collect()).await
}

#[derive(FromQueryResult)]
struct VariablesCounted {
    name: String,
    value_text: Option<String>,
    project_id: Option<String>,
    activities: i64,
}

async fn rebuild_variables<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    use variable::Column as V;
    variable_rollup::Entity::delete_many().exec(db).await?;
    let counted: Vec<VariablesCounted> = counted_by::<variable::Entity, _, _>(
        db,
        [V::Name, V::ValueText, V::ProjectId],
        "activities",
    )
    .await?;
    let counts = counted.into_iter().map(|c| {
        let key = VariableKey {
            name: c.name,
            value_text: c.value_text,
            project_id: c.project_id,
        };
        (key, c.activities)
    });
    insert_counts(db, counts.collect()).await
}

/// The rows of `E` counted per value of `columns` (`COUNT(*)` named
/// `count`), read as `M`, in the order of `columns`.
async fn counted_by<E: EntityTrait, M: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    columns: [E::Column; 3],
    count: &str,
) -> Result<Vec<M>, DbErr> {
    let mut select = E::find()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), count);
    for column in columns {
        select = select.column(column).group_by(column).order_by_asc(column);
    }
    select.into_model().all(db).await
}

/// Write counted rows into an empty rollup, 500 per statement; how many.
async fn insert_counts<K: Rollup, C: ConnectionTrait>(
    db: &C,
    counts: Vec<(K, K::Counts)>,
) -> Result<u64, DbErr>
where
    <K::Entity as EntityTrait>::Model: IntoActiveModel<<K::Entity as EntityTrait>::ActiveModel>,
{
    let written = counts.len() as u64;
    let mut rows = counts.into_iter().map(|(key, n)| {
        let name = key.key();
        key.row(name, n).into_active_model()
    });
    loop {
        let chunk: Vec<_> = rows.by_ref().take(500).collect();
        if chunk.is_empty() {
            return Ok(written);
        }
        K::Entity::insert_many(chunk).exec(db).await?;
    }
}

/// The rollups' indexes that counts read them by, on PostgreSQL.
pub const CLUSTERED: [(&str, &str); 2] = [
    ("activity_rollups", "activity_rollups_project_period"),
    ("variable_rollups", "variable_rollups_name_value"),
];

/// Rewrite PostgreSQL's rollups in the order of the indexes counts read
/// them by (`CLUSTER`), as [`rebuild`] writes them. A bulk load updates
/// each rollup row many times, and each version that did not fit its page
/// moved elsewhere, so the rows one count reads ended up a heap page each: at a million leads a
/// project's 7-day `dispositionCounts` read about 300 pages for 150 rows,
/// most of them outside PostgreSQL's buffers. In order they share a few
/// pages. The rewrite locks the table (2.7 s at a million leads): it waits
/// at most 5 s for the lock, and skipping it loses nothing but the order.
pub async fn cluster(db: &sea_orm::DatabaseConnection) {
    use sea_orm::TransactionTrait;
    for (table, index) in CLUSTERED {
        let clustered = async {
            let txn = db.begin().await?;
            txn.execute_unprepared("SET LOCAL lock_timeout = '5s'")
                .await?;
            txn.execute_unprepared(&format!("CLUSTER {table} USING {index}"))
                .await?;
            txn.commit().await
        };
        if let Err(error) = clustered.await {
            tracing::warn!(table, %error, "rollup left in its order: CLUSTER failed");
        }
    }
}

/// Build the rollups if one is empty while what it counts exists: the
/// first start after the migration that added it, or after an upgrade
/// that added a span. (Every current activity is counted in a row of
/// every span, and every lead and every variable row in some row, so an
/// empty rollup, or no row of the longest span, beside stored rows was
/// never built.) One transaction; on PostgreSQL instances starting
/// together take turns, and the later ones find it built.
pub async fn build_if_missing(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Any constant of leadql's own: the first bytes of "rollup".
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7526746143300)")
            .await?;
    }
    let exists = |q: sea_orm::sea_query::SelectStatement| {
        let txn = &txn;
        async move { Ok::<bool, DbErr>(txn.query_one(&q).await?.is_some()) }
    };
    let activities = activity::Entity::find()
        .select_only()
        .column(activity::Column::Id)
        .limit(1)
        .into_query();
    let counted = activity_rollup::Entity::find()
        .select_only()
        .column(activity_rollup::Column::Key)
        .filter(activity_rollup::Column::Span.eq(LONG))
        .limit(1)
        .into_query();
    let leads = lead::Entity::find()
        .select_only()
        .column(lead::Column::Id)
        .limit(1)
        .into_query();
    let leads_counted = lead_rollup::Entity::find()
        .select_only()
        .column(lead_rollup::Column::Key)
        .limit(1)
        .into_query();
    let variables = variable::Entity::find()
        .select_only()
        .column(variable::Column::ActivityId)
        .limit(1)
        .into_query();
    let variables_counted = variable_rollup::Entity::find()
        .select_only()
        .column(variable_rollup::Column::Key)
        .limit(1)
        .into_query();
    let missing = (exists(activities).await? && !exists(counted).await?)
        || (exists(leads).await? && !exists(leads_counted).await?)
        || (exists(variables).await? && !exists(variables_counted).await?);
    if missing {
        let rows = rebuild(&txn).await?;
        tracing::info!(rows, "rollups built from the stored activities and leads");
    }
    txn.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(span: i64, start: i64, disposition: &str) -> Key {
        Key {
            project_id: Some("p1".into()),
            span,
            start,
            disposition: Some(disposition.into()),
            disposition_type: None,
        }
    }

    fn variable(name: &str, value: &str) -> VariableKey {
        VariableKey {
            name: name.into(),
            value_text: Some(value.into()),
            project_id: Some("p1".into()),
        }
    }

    #[test]
    fn keys_name_their_parts_exactly() {
        let a = activity(HOUR, 7 * HOUR, "Interested");
        assert_eq!(a.key(), a.clone().key());
        assert_ne!(a.key(), activity(HOUR, 7 * HOUR, "Busy").key());
        assert_ne!(a.key(), activity(DAY, 7 * HOUR, "Interested").key());
        let mut other_project = a.clone();
        other_project.project_id = None;
        assert_ne!(a.key(), other_project.key());
        // Values alike in the ordered start (cut at 48 bytes) differ in
        // the digest.
        let long = "x".repeat(60);
        let a = variable("note", &format!("{long}a"));
        let b = variable("note", &format!("{long}b"));
        assert_eq!(a.key()[..54], b.key()[..54]);
        assert_ne!(a.key(), b.key());
        let mut none = variable("note", "");
        none.value_text = None;
        assert_ne!(none.key(), variable("note", "").key());
    }

    #[test]
    fn a_spans_keys_follow_its_periods() {
        let starts = [-2 * DAY, -DAY, 0, DAY, 2 * DAY, 400 * DAY, 40_000 * DAY];
        let keys: Vec<String> = starts
            .iter()
            .map(|&start| activity(DAY, start, "Interested").key())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // A batch's rows of one period share the key's start.
        let (a, b) = (activity(DAY, DAY, "A").key(), activity(DAY, DAY, "B").key());
        assert_eq!(a[..25], b[..25]);
        assert!(a.starts_with("5265c00.8000000005265c00."), "{a}");
    }

    #[test]
    fn long_names_and_values_are_cut_at_a_character() {
        let name = "é".repeat(30); // 60 bytes
        let key = variable(&name, "ü").key();
        assert!(key.starts_with(&format!("{}|ü|", "é".repeat(24))), "{key}");
        assert_eq!(key.len(), 48 + 1 + 2 + 1 + 32);
        assert_eq!(head("aé", 2), "a");
        assert_eq!(head("abc", 48), "abc");
    }
}
