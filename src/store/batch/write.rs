//! What a batch writes: one script of multi-row statements (the log, the
//! activities and their parts, updates, leads, and the feeds' logs).

use super::read::Stored;
use super::script::{Conflict, Script};
use super::{Applied, Decided, Status};
use crate::ingest::payload::callback::Rules;
use crate::ingest::payload::Delivery;
use crate::store::callbacks::project_callbacks;
use crate::store::projection::{project_lead, LeadFacts};
use crate::store::rollup::{Deltas, Rollup};
use entity::{
    activity, activity_event, analysis, callback, conversation, delivery, disposition_event, lead,
    lead_update, message, tool_call, variable,
};
use sea_orm::{DbBackend, EntityTrait, IntoActiveModel, NotSet, Set};
use std::collections::HashMap;

/// Add the batch's changes to a rollup's counts (rows that reach zero are
/// removed). Late in the script, before only the feeds' logs: on
/// PostgreSQL a row shared with a concurrent batch stays locked only
/// until this batch commits, and is locked before the feeds' lock (which
/// must come last), so the two never wait on each other in a cycle.
pub(super) fn write_counts<K: Rollup>(script: &mut Script, deltas: Deltas<K>)
where
    <K::Entity as EntityTrait>::Model: IntoActiveModel<<K::Entity as EntityTrait>::ActiveModel>,
    <K::Entity as EntityTrait>::ActiveModel: Send,
{
    let (rows, fell) = deltas.rows();
    script.insert::<K::Entity, _>(
        rows.into_iter()
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::Add(K::KEY, K::COUNTS),
    );
    let fell: Vec<&str> = fell.iter().map(AsRef::as_ref).collect();
    script.delete_in::<K::Entity>(K::KEY, &fell, K::COUNTS.first().copied());
}

/// The raw log: every non-duplicate body with its outcome, and the repeat
/// count of bodies logged by an earlier batch.
pub(super) fn log_deliveries(
    script: &mut Script,
    deliveries: &[&Delivery],
    decided: &Decided,
    stored: &Stored,
    received_at: i64,
) {
    let mut repeats = decided.duplicates.clone();
    let mut log_rows = Vec::new();
    for (d, status) in deliveries.iter().zip(&decided.statuses) {
        if *status == Status::Duplicate {
            continue;
        }
        log_rows.push(delivery::ActiveModel {
            id: NotSet,
            ..delivery::Model {
                id: 0,
                body_hash: d.body_hash.clone(),
                kind: d.kind.as_str().to_string(),
                source_id: d.source_id.clone(),
                lead_id: d.lead_id.clone(),
                timestamp: d.timestamp,
                outcome: status.as_str().to_string(),
                body: d.body.clone(),
                received_at,
                duplicate_count: repeats.remove(d.body_hash.as_str()).unwrap_or(0),
                pruned_at: None,
            }
            .into_active_model()
        });
    }
    script.insert::<delivery::Entity, _>(log_rows, Conflict::Ignore(delivery::Column::BodyHash));
    let repeats: Vec<(&str, i32)> = repeats
        .into_iter()
        .filter(|(hash, _)| stored.logged.contains(*hash))
        .collect();
    script.add_repeats(&repeats);
}

/// Each winning activity with its parts; the parts of the older versions
/// it `replaced` are deleted first.
pub(super) fn write_activities(script: &mut Script, applied: &Applied, replaced: &[&str]) {
    script.delete_in::<message::Entity>(message::Column::ActivityId, replaced, None);
    script.delete_in::<tool_call::Entity>(tool_call::Column::ActivityId, replaced, None);
    script.delete_in::<variable::Entity>(variable::Column::ActivityId, replaced, None);
    script.delete_in::<analysis::Entity>(analysis::Column::ActivityId, replaced, None);
    script.delete_in::<conversation::Entity>(conversation::Column::ActivityId, replaced, None);
    let winners = &applied.activities;
    script.insert::<activity::Entity, _>(
        winners
            .iter()
            .map(|w| w.activity.clone().into_active_model())
            .collect(),
        Conflict::Replace(activity::Column::Id),
    );
    script.insert::<conversation::Entity, _>(
        winners
            .iter()
            .filter_map(|w| w.rows.conversation.clone())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::None,
    );
    script.insert::<message::Entity, _>(
        winners
            .iter()
            .flat_map(|w| w.rows.messages.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::None,
    );
    script.insert::<tool_call::Entity, _>(
        winners
            .iter()
            .flat_map(|w| w.rows.tool_calls.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::None,
    );
    script.insert::<analysis::Entity, _>(
        winners
            .iter()
            .filter_map(|w| w.rows.analysis.clone())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::None,
    );
    script.insert::<variable::Entity, _>(
        winners
            .iter()
            .flat_map(|w| w.rows.variables.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::None,
    );
}

/// Each winning update result.
pub(super) fn write_updates(script: &mut Script, applied: &Applied) {
    script.insert::<lead_update::Entity, _>(
        applied
            .updates
            .iter()
            .map(|u| (*u).clone().into_active_model())
            .collect(),
        Conflict::Replace(lead_update::Column::Id),
    );
}

/// What the facts of a batch's leads project: each lead's row, and their
/// callbacks by id.
pub(super) struct Projected {
    pub(super) leads: Vec<lead::Model>,
    pub(super) callbacks: HashMap<String, callback::Model>,
}

/// Project `leads` (each lead once) and their callbacks from their
/// activities' `facts`.
pub(super) fn project_leads(
    leads: &[String],
    facts: &HashMap<String, Vec<LeadFacts>>,
    rules: &Rules,
) -> Projected {
    let mut projected = Projected {
        leads: Vec::with_capacity(leads.len()),
        callbacks: HashMap::new(),
    };
    for id in leads {
        let facts = facts.get(id).map(Vec::as_slice).unwrap_or_default();
        let lead = project_lead(id, facts);
        for row in project_callbacks(id, lead.project_id.as_deref(), facts, rules) {
            projected.callbacks.insert(row.id.clone(), row);
        }
        projected.leads.push(lead);
    }
    projected
}

/// The changed leads, recomputed from their activities (`after`), and the
/// callbacks that changed with them: `before` holds the callbacks the same
/// leads had before this batch (stored rows are exactly that projection),
/// so only rows that differ are written and only promises that went away
/// (a newer version of an activity without one, an activity moved to
/// another lead) are deleted.
pub(super) fn write_leads(
    script: &mut Script,
    after: Projected,
    before: &HashMap<String, callback::Model>,
) {
    script.insert::<lead::Entity, _>(
        after
            .leads
            .into_iter()
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::Replace(lead::Column::Id),
    );
    let after = after.callbacks;
    let gone: Vec<&str> = before
        .keys()
        .filter(|id| !after.contains_key(*id))
        .map(String::as_str)
        .collect();
    script.delete_in::<callback::Entity>(callback::Column::Id, &gone, None);
    let mut changed: Vec<callback::Model> = after
        .into_values()
        .filter(|row| before.get(&row.id) != Some(row))
        .collect();
    changed.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    script.insert::<callback::Entity, _>(
        changed
            .into_iter()
            .map(IntoActiveModel::into_active_model)
            .collect(),
        Conflict::Replace(callback::Column::Id),
    );
}

/// The feeds' logs: an entry for each activity stored (the
/// `activityRecorded` cursor) and the disposition events (the
/// `dispositionChanged` cursor); on PostgreSQL a NOTIFY for each, which
/// other instances receive at commit.
///
/// On PostgreSQL the entries take their ids one transaction at a time,
/// under an advisory lock held to commit, so ids follow commit order
/// across writers and instances: a subscriber that has seen id N has seen
/// every entry below N. The lock is taken last in the batch's script, and
/// nothing but the commit comes after it.
pub(super) fn write_feeds(script: &mut Script, applied: &Applied, received_at: i64) {
    // An event is caused by a stored activity: no activities, no events,
    // and on PostgreSQL no lock and no NOTIFY. (The inserts below are
    // written either way: on SQLite the script's text stays the same.)
    let announce = script.backend == DbBackend::Postgres && !applied.activities.is_empty();
    if announce {
        script.push_sql("SELECT pg_advisory_xact_lock(1818584177, 1)");
    }
    // Within a commit, in the order the activities happened.
    let mut stored: Vec<&activity::Model> =
        applied.activities.iter().map(|w| &w.activity).collect();
    stored.sort_unstable_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    script.insert::<activity_event::Entity, _>(
        stored
            .into_iter()
            .map(|a| activity_event::ActiveModel {
                id: NotSet,
                activity_id: Set(a.id.clone()),
                recorded_at: Set(received_at),
            })
            .collect(),
        Conflict::None,
    );
    script.insert::<disposition_event::Entity, _>(
        applied
            .events
            .iter()
            .map(|e| disposition_event::ActiveModel {
                id: NotSet,
                ..e.clone().into_active_model()
            })
            .collect(),
        Conflict::None,
    );
    if announce {
        script.push_sql(&format!(
            "SELECT pg_notify('{}', '')",
            crate::feed::ACTIVITIES_CHANNEL
        ));
        if !applied.events.is_empty() {
            script.push_sql(&format!(
                "SELECT pg_notify('{}', '')",
                crate::feed::EVENTS_CHANNEL
            ));
        }
    }
}
