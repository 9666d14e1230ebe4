//! Rows that arrived live: a published event's lead and activity, a
//! published page of recorded activities, read from the rows all their subscribers
//! share ([`crate::feed::Shared`]) instead of once per subscriber. Each
//! subscriber sees of them what its reader may see, by the lead's project,
//! as [`crate::store::read::Scoped::visible`] decides in SQL.

use super::activity::{Activity, ActivityFilter};
use super::lead::Lead;
use super::reader;
use crate::error::ApiError;
use crate::feed::Shared;
use crate::graphql::engine::resource::Joined;
use crate::store::read::Reader;
use async_graphql::{Context, Result};
use entity::activity;
use std::sync::Arc;

/// Why a row's relation is not answered, live or looked up: unknown, or
/// not for this reader to see (the same words for both).
pub(crate) fn not_found(what: &str, id: &str) -> async_graphql::Error {
    async_graphql::Error::new(format!("{what} {id} not found"))
}

fn database(err: Arc<sea_orm::DbErr>) -> async_graphql::Error {
    ApiError::database(&err).into()
}

/// The lead `id` of a row that arrived live, from its shared rows: None
/// when the row did not arrive live (or the lead is not among them, which
/// the caller then looks up as usual).
pub(crate) async fn lead(
    ctx: &Context<'_>,
    joined: &Joined,
    id: &str,
) -> Option<Result<Arc<Lead>>> {
    let shared = joined.attached::<Shared>()?;
    let leads = match shared.leads().await {
        Ok(leads) => leads,
        Err(err) => return Some(Err(database(err))),
    };
    let lead = leads.get(id)?;
    Some(if reader(ctx).sees_project(lead.project_id.as_deref()) {
        Ok(Arc::new(Lead::from((**lead).clone())))
    } else {
        Err(not_found("lead", id))
    })
}

/// The activity `id` of a row that arrived live, from its shared rows
/// (see [`lead`]); it carries them on, for its own lead.
pub(crate) async fn activity(
    ctx: &Context<'_>,
    joined: &Joined,
    id: &str,
) -> Option<Result<Arc<Activity>>> {
    let shared = joined.attached::<Shared>()?;
    let found = async {
        let Some(row) = shared.activities().await?.get(id).cloned() else {
            return Ok(None);
        };
        let project = shared.project_of(&row.lead_id).await?;
        Ok(Some((row, project)))
    };
    Some(match found.await {
        Ok(Some((row, project))) if reader(ctx).sees_project(project.as_deref()) => {
            Ok(Arc::new(live_activity(&row, &shared)))
        }
        Ok(Some(_)) => Err(not_found("activity", id)),
        Ok(None) => return None,
        Err(err) => Err(database(err)),
    })
}

/// An activity that arrived live, carrying its shared rows.
pub(crate) fn live_activity(row: &activity::Model, shared: &Arc<Shared>) -> Activity {
    let mut activity = Activity::from(row.clone());
    activity.joined.attach(shared.clone());
    activity
}

/// Where an activity sent by `activityRecorded` sits in that feed: its
/// entry in `activity_events` (`Activity.recordedCursor`).
pub(crate) struct Recorded(pub i64);

/// An activity as the `activityRecorded` feed sends it: with its cursor,
/// and the rows it shares with the rest of its page when it arrived live.
pub(crate) fn recorded_activity(
    row: &activity::Model,
    entry: i64,
    shared: Option<&Arc<Shared>>,
) -> (i64, Activity) {
    let mut activity = match shared {
        Some(shared) => live_activity(row, shared),
        None => Activity::from(row.clone()),
    };
    activity.joined.attach(Arc::new(Recorded(entry)));
    (entry, activity)
}

/// The activities of a published page of activity events that `reader`
/// sees and `filter` (decided in memory: [`ActivityFilter::in_memory`])
/// passes, in feed order, each with its entry id.
pub(crate) async fn recorded(
    shared: &Arc<Shared>,
    reader: &Reader,
    filter: Option<&ActivityFilter>,
) -> Result<Vec<(i64, Activity)>> {
    let activities = shared.activities().await.map_err(database)?;
    // Only a scoped reader needs the leads, for their projects.
    let leads = match reader.projects() {
        Some(_) => Some(shared.leads().await.map_err(database)?),
        None => None,
    };
    let visible = |row: &activity::Model| {
        leads.as_ref().is_none_or(|leads| {
            let project = leads
                .get(&row.lead_id)
                .and_then(|l| l.project_id.as_deref());
            reader.sees_project(project)
        })
    };
    Ok(shared
        .entries()
        .iter()
        .filter_map(|(entry, id)| Some((*entry, activities.get(id)?)))
        .filter(|(_, row)| visible(row) && filter.is_none_or(|f| f.matches(row)))
        .map(|(entry, row)| recorded_activity(row, entry, Some(shared)))
        .collect())
}
