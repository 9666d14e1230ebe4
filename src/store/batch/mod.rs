//! Storing a batch of deliveries in one transaction (group commit).
//!
//! The ingest pipeline hands concurrent deliveries here together; they are
//! decided in arrival order (duplicate, stale or stored), written with
//! multi-row statements and committed once, and only then answered. Lead
//! rows are recomputed from their activities, so the result does not depend
//! on delivery order; disposition events record each change of a lead's
//! disposition as this batch saw it.

mod read;
mod script;
mod write;

use super::projection::{project_lead, LeadFacts};
use super::rollup::{Deltas, Key, LeadKey, Measures, VariableKey};
use crate::ingest::payload::callback::{Promise, Rules};
use crate::ingest::payload::{ActivityRows, Delivery, Kind, Projection};
use entity::{activity, disposition_event, lead, lead_update};
use read::{lead_facts, lock_leads, Stored};
use script::Script;
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use std::collections::{BTreeSet, HashMap, HashSet};
use write::{
    log_deliveries, project_leads, write_activities, write_counts, write_feeds, write_leads,
    write_updates,
};

/// What happened to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// New, or a newer version of an activity: it is now the current data.
    Stored,
    /// The same body was stored before.
    Duplicate,
    /// An older version of something already stored: logged, not applied.
    Stale,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stored => "stored",
            Status::Duplicate => "duplicate",
            Status::Stale => "stale",
        }
    }
}

/// The outcome of one batch: a status per delivery, in order, and what it
/// added to the feeds' logs, to publish after commit.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub statuses: Vec<Status>,
    /// Disposition events recorded (`dispositionChanged`).
    pub events: usize,
    /// Activities stored (`activityRecorded`).
    pub activities: usize,
}

/// How a batch is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// New deliveries: log them, detect duplicates, record disposition events.
    Live,
    /// Deliveries replayed from the log by `reproject`: projections only.
    Replay,
}

/// Store `deliveries` inside the caller's transaction; `rules` say how
/// promised callbacks are found and read.
///
/// Round trips are what a batch costs (each is a thread hop for SQLite and
/// a network hop for PostgreSQL), so it reads in two queries (three when
/// it replaces stored activities, whose measures the rollup takes back)
/// and writes every row, the feeds' logs included, in one script of
/// multi-row statements (see `script`: on SQLite a fixed text with the
/// rows bound as JSON, on PostgreSQL VALUES in the text).
#[tracing::instrument(skip_all, fields(deliveries = deliveries.len()))]
pub async fn apply_batch<C: ConnectionTrait>(
    txn: &C,
    deliveries: &[&Delivery],
    received_at: i64,
    mode: Mode,
    rules: &Rules,
) -> Result<BatchResult, DbErr> {
    let live = mode == Mode::Live;
    if deliveries.is_empty() {
        return Ok(BatchResult::default());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        lock_leads(txn, deliveries.iter().map(|d| d.lead_id.as_str())).await?;
    }
    let mut stored = Stored::read(txn, deliveries, live).await?;
    let decided = decide(deliveries, &mut stored);
    let replaced = replaced_ids(deliveries, &decided.statuses, &stored);
    if live {
        stored.read_measures(txn, &replaced).await?;
    }
    let affected = affected_leads(deliveries, &decided.statuses, &stored);
    let mut facts = lead_facts(txn, &affected).await?;
    // What is stored now: a lead and its callbacks are a function of its
    // activities; so are the rollup's counts.
    let before = project_leads(&affected, &facts, rules);
    let replaced_counts = live.then(|| replaced_keys(&replaced, &facts, &stored));
    let applied = apply_in_order(
        deliveries,
        &decided.statuses,
        &stored,
        &mut facts,
        &before.leads,
        live.then_some(received_at),
        rules,
    );

    let mut script = Script::new(txn.get_database_backend());
    if live {
        log_deliveries(&mut script, deliveries, &decided, &stored, received_at);
    }
    write_activities(&mut script, &applied, &replaced);
    write_updates(&mut script, &applied);
    let after = project_leads(&affected, &facts, rules);
    let counts = replaced_counts.map(|replaced| {
        // A lead has a row if it was read, or held a replaced activity.
        let previous: HashSet<&str> = stored.lead_of.values().map(String::as_str).collect();
        let existed = |lead: &str| stored.leads.contains(lead) || previous.contains(lead);
        (
            rollup_deltas(replaced, &applied),
            lead_deltas(&before.leads, &after.leads, existed),
            variable_deltas(&stored.variables, &applied),
        )
    });
    write_leads(&mut script, after, &before.callbacks);
    if let Some((activities, leads, variables)) = counts {
        // Replay (reproject) counts everything at its end instead.
        write_counts(&mut script, activities);
        write_counts(&mut script, leads);
        write_counts(&mut script, variables);
    }
    let (events, activities) = if live {
        write_feeds(&mut script, &applied, received_at);
        (applied.events.len(), applied.activities.len())
    } else {
        (0, 0)
    };
    script.execute(txn).await?;
    Ok(BatchResult {
        statuses: decided.statuses,
        events,
        activities,
    })
}

/// The activities whose stored versions this batch replaces, by id: what
/// their replacements delete and take back from the rollup.
fn replaced_ids<'a>(
    deliveries: &[&'a Delivery],
    statuses: &[Status],
    stored: &Stored,
) -> Vec<&'a str> {
    let ids: BTreeSet<&str> = deliveries
        .iter()
        .zip(statuses)
        .filter(|(d, s)| **s == Status::Stored && d.kind == Kind::Activity)
        .map(|(d, _)| d.source_id.as_str())
        .filter(|id| stored.lead_of.contains_key(*id))
        .collect();
    ids.into_iter().collect()
}

/// The rollup keys and measures of the stored versions this batch
/// replaces (read before it applies anything), by activity id.
fn replaced_keys(
    replaced: &[&str],
    facts: &HashMap<String, Vec<LeadFacts>>,
    stored: &Stored,
) -> HashMap<String, (Vec<Key>, Measures)> {
    let ids: HashSet<&str> = replaced.iter().copied().collect();
    facts
        .values()
        .flatten()
        .filter(|f| ids.contains(f.id.as_str()))
        .map(|f| {
            let measures = Measures::of(
                f,
                stored.turn_counts.get(&f.id).copied(),
                stored.tool_calls.get(&f.id).copied().unwrap_or(0),
            );
            (f.id.clone(), (Key::of(f).collect(), measures))
        })
        .collect()
}

/// What the batch changes in the rollup: each winning version counts
/// under its key, and the version it replaces no longer counts.
fn rollup_deltas(
    replaced: HashMap<String, (Vec<Key>, Measures)>,
    applied: &Applied,
) -> Deltas<Key> {
    let mut deltas = Deltas::default();
    for (keys, measures) in replaced.into_values() {
        for key in keys {
            deltas.add(key, measures, -1);
        }
    }
    for w in &applied.activities {
        let facts = LeadFacts::from(&w.activity);
        let turn_count = w.rows.conversation.as_ref().and_then(|c| c.turn_count);
        let measures = Measures::of(
            &facts,
            turn_count.map(i64::from),
            w.rows.tool_calls.len() as i64,
        );
        for key in Key::of(&facts) {
            deltas.add(key, measures, 1);
        }
    }
    deltas
}

/// What the batch changes in the variable rollup: each winning version
/// counts under each variable it extracted, and the versions it replaces
/// (`replaced`: their variables) no longer count.
fn variable_deltas(replaced: &[VariableKey], applied: &Applied) -> Deltas<VariableKey> {
    let mut deltas = Deltas::default();
    for key in replaced {
        deltas.add(key.clone(), 1, -1);
    }
    for w in &applied.activities {
        for row in &w.rows.variables {
            deltas.add(VariableKey::of(row), 1, 1);
        }
    }
    deltas
}

/// What the batch changes in the lead rollup: each lead it writes counts
/// under its new projection's key, and no longer under its stored one's
/// (if it `existed`).
fn lead_deltas(
    before: &[lead::Model],
    after: &[lead::Model],
    existed: impl Fn(&str) -> bool,
) -> Deltas<LeadKey> {
    let mut deltas = Deltas::default();
    for lead in before.iter().filter(|l| existed(&l.id)) {
        deltas.add(LeadKey::of(lead), 1, -1);
    }
    for lead in after {
        deltas.add(LeadKey::of(lead), 1, 1);
    }
    deltas
}

/// Each delivery's status, and how often each body repeated.
struct Decided<'a> {
    statuses: Vec<Status>,
    duplicates: HashMap<&'a str, i32>,
}

/// Decide each delivery in arrival order: a body seen before is a
/// duplicate; a version not newer than the current one is stale; else it
/// becomes the current version.
fn decide<'a>(deliveries: &[&'a Delivery], stored: &mut Stored) -> Decided<'a> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut statuses = Vec::with_capacity(deliveries.len());
    let mut duplicates: HashMap<&'a str, i32> = HashMap::new();
    for d in deliveries {
        let hash = d.body_hash.as_str();
        let status = if stored.logged.contains(hash) || !seen.insert(hash) {
            *duplicates.entry(hash).or_default() += 1;
            Status::Duplicate
        } else {
            let versions = match d.kind {
                Kind::Activity => &mut stored.activities,
                Kind::Update => &mut stored.updates,
            };
            let candidate = (d.timestamp, d.body_hash.clone());
            match versions.get(&d.source_id) {
                Some(current) if *current >= candidate => Status::Stale,
                _ => {
                    versions.insert(d.source_id.clone(), candidate);
                    Status::Stored
                }
            }
        };
        statuses.push(status);
    }
    Decided {
        statuses,
        duplicates,
    }
}

/// The leads a batch changes: those of its stored deliveries, and the
/// previous leads of activities that moved.
fn affected_leads(deliveries: &[&Delivery], statuses: &[Status], stored: &Stored) -> Vec<String> {
    let mut affected: BTreeSet<String> = BTreeSet::new();
    for (d, status) in deliveries.iter().zip(statuses) {
        if *status == Status::Stored {
            affected.insert(d.lead_id.clone());
            if let Some(previous) = stored.lead_of.get(&d.source_id) {
                affected.insert(previous.clone());
            }
        }
    }
    affected.into_iter().collect()
}

/// What the stored deliveries of a batch write: the winning version of
/// each activity and update, and the disposition changes they cause.
struct Applied<'a> {
    activities: Vec<Winner<'a>>,
    updates: Vec<&'a lead_update::Model>,
    events: Vec<disposition_event::Model>,
}

/// The winning version of an activity: its row, with the promise it made
/// noted (see [`note_promise`]), and its parts.
struct Winner<'a> {
    activity: activity::Model,
    rows: &'a ActivityRows,
}

/// Note on the activity row the callback it promised, by `rules`: the
/// facts the callbacks projection is computed from.
fn note_promise(activity: &mut activity::Model, promise: Option<Promise>) {
    activity.callback_promised = promise.is_some();
    let promise = promise.unwrap_or_default();
    activity.callback_tool_call_id = promise.tool_call_id;
    activity.callback_date = promise.local_date;
    activity.callback_time = promise.local_time;
    activity.callback_offset = promise.payload_offset;
}

/// Apply the stored deliveries to the leads' facts in arrival order,
/// noting each change of a lead's disposition as recorded at `events_at`
/// (live batches only; None when replaying).
fn apply_in_order<'a>(
    deliveries: &[&'a Delivery],
    statuses: &[Status],
    stored: &Stored,
    facts: &mut HashMap<String, Vec<LeadFacts>>,
    stored_leads: &[lead::Model],
    events_at: Option<i64>,
    rules: &Rules,
) -> Applied<'a> {
    let mut dispositions: HashMap<String, Option<String>> = stored_leads
        .iter()
        .map(|lead| (lead.id.clone(), lead.disposition.clone()))
        .collect();
    let mut activities: HashMap<&str, Winner<'a>> = HashMap::new();
    let mut updates: HashMap<&str, &lead_update::Model> = HashMap::new();
    let mut events = Vec::new();
    for (d, status) in deliveries.iter().zip(statuses) {
        if *status != Status::Stored {
            continue;
        }
        let rows = match &d.projection {
            Projection::Update(update) => {
                updates.insert(d.source_id.as_str(), update);
                continue;
            }
            Projection::Activity(rows) => rows,
        };
        let mut activity = rows.activity.clone();
        note_promise(&mut activity, rules.promise_of(rows));
        if let Some(previous) = stored.lead_of.get(&d.source_id) {
            if let Some(list) = facts.get_mut(previous) {
                list.retain(|f| f.id != d.source_id);
            }
        }
        let list = facts.entry(d.lead_id.clone()).or_default();
        list.retain(|f| f.id != d.source_id);
        list.push(LeadFacts::from(&activity));
        activities.insert(d.source_id.as_str(), Winner { activity, rows });
        let Some(recorded_at) = events_at else {
            continue;
        };
        let projected = project_lead(&d.lead_id, list);
        let previous = dispositions.get(&d.lead_id).cloned().flatten();
        if let Some(new) = &projected.disposition {
            if previous
                .as_ref()
                .is_none_or(|p| !p.eq_ignore_ascii_case(new))
            {
                events.push(disposition_event::Model {
                    id: 0,
                    lead_id: d.lead_id.clone(),
                    activity_id: d.source_id.clone(),
                    project_id: projected.project_id.clone(),
                    previous_disposition: previous,
                    disposition: new.clone(),
                    disposition_type: projected.disposition_type.clone(),
                    occurred_at: rows.activity.timestamp,
                    recorded_at,
                });
            }
        }
        dispositions.insert(d.lead_id.clone(), projected.disposition);
    }
    let mut activities: Vec<Winner> = activities.into_values().collect();
    activities.sort_unstable_by(|a, b| a.activity.id.cmp(&b.activity.id));
    let mut updates: Vec<&lead_update::Model> = updates.into_values().collect();
    updates.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Applied {
        activities,
        updates,
        events,
    }
}
