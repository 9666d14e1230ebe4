//! Activities: what the platform did for a lead (a call attempt, a
//! schedule, a state change), the current version of each `activityId`.

use super::analysis::Analysis;
use super::conversation::Conversation;
use super::lead::{lead_of, Lead};
use super::{condition, look_up, reader};
use crate::graphql::aggregate::{activities_total, sum_of};
use crate::graphql::engine::connection::{at_least, connection, cost, one, paged, root_by, Total};
use crate::graphql::engine::filter::{
    asked_of_each, like, like_pattern, string, Against, StringFilter,
};
use crate::graphql::engine::join::Join;
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{PageArgs, Reading, SortKey};
use crate::graphql::engine::resource::{resource, Joined};
use crate::graphql::engine::search;
use crate::graphql::Limits;
use crate::store::read::Reader;
use async_graphql::{ComplexObject, Context, InputObject, Json, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::{activity, analysis, conversation, lead, variable, variable_rollup};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, IntoSimpleExpr, QueryFilter, QuerySelect, QueryTrait, Select,
};
use std::sync::Arc;

/// One thing the platform did for a lead: a call attempt, a schedule, a
/// state change. The current version of each `activityId`.
#[resource(
    entity = activity,
    filter = ActivityFilter,
    filter_doc = "Which activities to include.",
    order = ActivityOrderField,
    order_doc = "Fields activities can be sorted by.",
    joins = activity_joins,
    complex
)]
pub struct Activity {
    /// The platform's `activityId`.
    #[field(key, filter, sort)]
    id: ID,
    /// The lead's `leadId`.
    #[field(key, filter)]
    lead_id: ID,
    /// `action_type` of the payload (`create`, `update`, …).
    #[field(filter)]
    action_type: Option<String>,
    /// `activity.type` (`call`, `schedule`, …).
    #[field(name = "type", filter)]
    r#type: Option<String>,
    /// `activity.status`.
    #[field(filter)]
    status: Option<String>,
    /// `activity.fromState`: the lead's state before.
    #[field(filter)]
    from_state: Option<String>,
    /// `activity.toState`: the lead's state after.
    #[field(filter)]
    to_state: Option<String>,
    /// `result.nextState`.
    #[field(filter)]
    next_state: Option<String>,
    /// `activity.scheduledAt`: when the activity was scheduled for.
    #[field(filter)]
    scheduled_at: Option<DateTime<Utc>>,
    /// The payload's `timestamp`: when this version of the activity happened.
    #[field(filter, sort)]
    timestamp: DateTime<Utc>,
    /// `result.callStatus` (`completed`, `busy`, `no-answer`, …).
    #[field(filter)]
    call_status: Option<String>,
    /// `result.status`.
    result_status: Option<String>,
    /// `result.success`.
    result_success: Option<bool>,
    /// Which call attempt this was (1 = first).
    #[field(filter)]
    attempt_number: Option<i32>,
    /// The platform's attempt log id.
    attempt_log_id: Option<String>,
    /// `metadata.isConnected`, as sent.
    #[field(filter)]
    is_connected: Option<bool>,
    /// `result.channelId`.
    #[field(filter)]
    channel_id: Option<i64>,
    /// `result.wsId`.
    ws_id: Option<i64>,
    /// `result.telephonyType` (e.g. `provider`).
    #[field(filter)]
    telephony_type: Option<String>,
    /// `result.hasTransfer`: the call was transferred.
    #[field(filter)]
    has_transfer: Option<bool>,
    /// `result.flowId` (the conversation may name another flow).
    #[field(filter)]
    flow_id: Option<String>,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// The calling process (which defines the dispositions).
    #[field(filter)]
    process_id: Option<String>,
    /// The client's own id for the lead.
    #[field(filter)]
    reference_id: Option<String>,
    /// `lastActivityId` of the payload: the lead's activity before this one.
    last_activity_id: Option<String>,
    /// The platform's `conversationId`, when it sent one.
    conversation_id: Option<String>,
    /// The telephony provider's call id.
    #[field(personal)]
    provider_call_id: Option<String>,
    /// `result.input.name`.
    #[field(personal)]
    lead_name: Option<String>,
    /// `result.input`: what the flow was given.
    #[field(personal)]
    input: Option<Json<serde_json::Value>>,
    /// `result.variables`: what the call extracted (the platform nests the
    /// values under `variables.variables`).
    #[field(personal)]
    variables: Option<Json<serde_json::Value>>,
    /// `metadata`, as sent.
    metadata: Option<Json<serde_json::Value>>,
    /// Fields of the payload leadql has no column for, by level
    /// (`payload`, `activity`, `result`).
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
    /// The payload's `leadSummary` after this activity.
    #[field(personal)]
    lead_summary: Option<String>,
    /// The payload's `leadDisposition` after this activity.
    #[field(filter_ci)]
    lead_disposition: Option<String>,
    /// The analysis disposition of this call.
    #[field(column = analysis_disposition, filter_ci)]
    disposition: Option<String>,
    /// The analysis disposition type of this call, as sent.
    #[field(column = analysis_disposition_type, filter_ci)]
    disposition_type: Option<String>,
    /// The call has a conversation (a transcript).
    #[field(key, filter)]
    has_conversation: bool,
    /// The language the platform inferred for the call
    /// (`variables.inferredLanguage`, e.g. "hi").
    #[field(filter, sort)]
    language: Option<String>,
    /// Activities that extracted this variable.
    #[filter_only(with = variable_condition, level, personal)]
    variable: VariableFilter,
    /// Activities whose analysis summary or transcript contains this text,
    /// ignoring case (index-backed for three characters or more).
    #[filter_only(with = search::activities, personal)]
    search: String,
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

/// `id IN (SELECT activity_id FROM variables WHERE name = … AND …)`.
///
/// A `projectId` condition beside it in the same `level` is also put on
/// the variables (see [`variable_rows`]): the list the subquery gives is
/// then only the project's. SQLite reads every activity it names before
/// sorting them; at 100,000 leads a project's first page of a common value
/// took 57 ms instead of 205 ms in the `sqlite3` shell.
fn variable_condition(f: &VariableFilter, level: &ActivityFilter, at: Against) -> Condition {
    let sub = Query::select()
        .column(variable::Column::ActivityId)
        .from(variable::Entity)
        .cond_where(variable_rows(f, level.project_id.as_ref(), at))
        .to_owned();
    Condition::all().add(activity::Column::Id.into_simple_expr().in_subquery(sub))
}

/// The variables `f` asks for: `name = … AND <value conditions>`, and
/// of the activities of `project` (a variable row carries its activity's
/// project, written and replaced with it).
fn variable_rows(f: &VariableFilter, project: Option<&StringFilter>, at: Against) -> Condition {
    let mut rows = Condition::all().add(variable::Column::Name.eq(f.name.clone()));
    if let Some(project) = project {
        rows = rows.add(string(
            variable::Column::ProjectId,
            project,
            false,
            at.backend,
        ));
    }
    let value = Expr::col(variable::Column::ValueText);
    if let Some(v) = &f.eq {
        rows = rows.add(value.clone().eq(v.clone()));
    }
    if let Some(vs) = &f.r#in {
        rows = rows.add(value.clone().is_in(vs.iter().cloned()));
    }
    if let Some(v) = &f.contains {
        rows = rows.add(like(value, like_pattern("%", v, "%"), at.backend));
    }
    rows
}

/// The count of a root list whose filter is one `variable` condition,
/// alone or with a `projectId` condition, without reading the activities.
///
/// For a reader of every project, from the variable rollup: its rows are
/// named and keyed as the variables are (name, value and the activity's
/// project), so the same condition, folded by the same code, selects the
/// rows counting exactly the variables it selects, and their sum is read
/// from a row per project and value instead of an index entry per
/// activity. A scoped reader sees activities by their lead's project,
/// which a rollup row does not hold: for it, the variables table alone,
/// which holds one row per activity and name, written and replaced with
/// its activity and carrying its lead and project, so its matching rows
/// are the matching activities. None for any other filter (the
/// activities are counted).
fn variable_total(reader: &Reader, filter: Option<&ActivityFilter>) -> Option<Total> {
    let (v, project) = variable_alone(filter)?;
    let rows = variable_rows(v, project, Against::of(reader));
    if reader.projects().is_none() {
        let mut counted = Query::select();
        counted
            .from_as(variable_rollup::Entity, variable::Entity)
            .cond_where(rows)
            .expr(sum_of("\"variables\".\"activities\""));
        return Some(Total::number(reader.rollups(), counted));
    }
    Some(Total::rows(
        reader.db(),
        reader.find::<variable::Entity>().filter(rows),
    ))
}

/// The `variable` condition of `filter` and the `projectId` condition
/// beside it, when those two (or the variable alone) are the whole filter:
/// the activities the variables table names by itself.
fn variable_alone(
    filter: Option<&ActivityFilter>,
) -> Option<(&VariableFilter, Option<&StringFilter>)> {
    let f = filter?;
    let v = f.variable.as_ref()?;
    let alone = ActivityFilter {
        variable: Some(v.clone()),
        project_id: f.project_id.clone(),
        ..Default::default()
    };
    (*f == alone).then_some((v, f.project_id.as_ref()))
}

/// How a page in time order finds the activities of a `variable`
/// condition or a `search` (alone or beside a `projectId`): by walking the
/// list's time index and asking each activity, which stops when the page
/// is full, where that is cheaper than reading every matching activity by
/// key and sorting them (at 100,000 leads, 79-85 ms for a project's
/// newest 20 of 24,504 activities with a variable value, on SQLite).
/// - A variable ([`variable_probe`]), and a search on SQLite
///   ([`search::activity_walk`]): when at least [`Limits::walk_from`]
///   activities match (1,000 unless a test says). With fewer, the walk
///   could pass over many activities for each one it keeps (all of them,
///   for a value no activity has); the bounded count of the matches tells
///   the two apart.
/// - A search on PostgreSQL ([`search::activity_probe`]): no bounded
///   count is cheap there, so the page walks at most
///   [`Limits::walk_first`] activities, and reads the list when those hold
///   no more than a page (see [`Reading::First`]).
async fn reading(
    ctx: &Context<'_>,
    reader: &Reader,
    filter: Option<&ActivityFilter>,
    order: Option<&[ActivityOrderBy]>,
) -> Result<Reading<activity::Entity>> {
    let Some(f) = filter else {
        return Ok(Reading::List);
    };
    let in_time = order
        .unwrap_or_default()
        .iter()
        .all(|o| o.field == ActivityOrderField::Timestamp);
    if !in_time || !paged(ctx) {
        return Ok(Reading::List);
    }
    let at = Against::of(reader);
    let limits = ctx.data_unchecked::<Limits>();
    let base = |rest: ActivityFilter| -> Result<Select<activity::Entity>> {
        let cond = condition(ctx, Some(&rest))?;
        Ok(reader.find::<activity::Entity>().filter(cond))
    };
    let (matching, probe, rest) = if let Some((v, project)) = variable_alone(filter) {
        let matching = reader
            .find::<variable::Entity>()
            .filter(variable_rows(v, project, at))
            .select_only()
            .expr(Expr::val(1))
            .into_query();
        let rest = ActivityFilter {
            variable: None,
            ..f.clone()
        };
        (matching, variable_probe(v, at), rest)
    } else {
        let alone = ActivityFilter {
            search: f.search.clone(),
            project_id: f.project_id.clone(),
            ..Default::default()
        };
        let Some(text) = f.search.as_deref().filter(|_| *f == alone) else {
            return Ok(Reading::List);
        };
        let rest = ActivityFilter {
            search: None,
            ..f.clone()
        };
        if let Some(probe) = search::activity_probe(text, at) {
            let rows = limits.walk_first;
            let base = base(rest)?;
            return Ok(Reading::First { base, probe, rows });
        }
        let Some(mut walk) = search::activity_walk(text, at) else {
            return Ok(Reading::List);
        };
        if f.project_id.is_some() || reader.projects().is_some() {
            let visible = ActivityFilter {
                project_id: f.project_id.clone(),
                ..Default::default()
            };
            let activities = reader
                .find::<activity::Entity>()
                .filter(condition(ctx, Some(&visible))?)
                .select_only()
                .expr(Expr::val(1))
                .into_query();
            walk.among(activities, (activity::Entity, activity::Column::Id));
        }
        (walk.matching, walk.probe, rest)
    };
    if !at_least(reader.db(), matching, limits.walk_from).await? {
        return Ok(Reading::List);
    }
    Ok(Reading::Instead(base(rest)?.filter(probe)))
}

/// `EXISTS (SELECT 1 FROM variables WHERE activity_id = activities.id AND
/// name = … AND …)`: `f` asked of one activity, by the variables' key, as
/// a walk asks each row ([`asked_of_each`]).
///
/// On PostgreSQL the activity's variables are read first on their own
/// (`FROM (SELECT … WHERE activity_id = activities.id OFFSET 0) AS
/// variables`), and `f` asked of those: the plan PostgreSQL keeps for the
/// server's prepared statement estimates a name and value of unknown
/// parameters at one row, and then looked each activity up in the index by
/// name and value, reading every entry of the value to find the activity's
/// (32 ms for a page of 20 at 10,000 leads, against 1 ms by the key).
fn variable_probe(f: &VariableFilter, at: Against) -> Condition {
    use variable::Column as V;
    let of_activity = Expr::col((variable::Entity, V::ActivityId))
        .equals((activity::Entity, activity::Column::Id));
    let mut sub = Query::select();
    sub.expr(Expr::val(1));
    if at.backend == sea_orm::DbBackend::Postgres {
        let own = Query::select()
            .columns([V::Name, V::ValueText])
            .from(variable::Entity)
            .and_where(of_activity)
            .offset(0)
            .to_owned();
        sub.from_subquery(own, variable::Entity);
    } else {
        sub.from(variable::Entity).and_where(of_activity);
    }
    sub.cond_where(variable_rows(f, None, at));
    Condition::all().add(asked_of_each(sub, at.backend))
}

/// An activity's lead, analysis and conversation come with it when asked
/// for (they belong to the same lead, so they are visible with it).
fn activity_joins() -> Vec<Join<activity::Entity>> {
    vec![
        Join::to::<Lead>("lead", activity::Column::LeadId, lead::Column::Id),
        Join::to::<Analysis>(
            "analysis",
            activity::Column::Id,
            analysis::Column::ActivityId,
        ),
        Join::to::<Conversation>(
            "conversation",
            activity::Column::Id,
            conversation::Column::ActivityId,
        ),
    ]
}

order_input!(
    ActivityOrderBy,
    ActivityOrderField,
    activity,
    "How to sort activities; ties are broken by id. Default: TIMESTAMP ASC."
);

/// The sort key of `orderBy` (default: oldest first), then the id.
pub fn activity_key(order: Option<&[ActivityOrderBy]>) -> SortKey<activity::Entity> {
    let parts = match order {
        Some(o) if !o.is_empty() => o.iter().map(ActivityOrderBy::part).collect(),
        _ => vec![ActivityOrderField::Timestamp.part(false)],
    };
    SortKey::new(parts, vec![ActivityOrderField::Id.part(false)])
}

connection!(
    ActivityConnection,
    ActivityEdge,
    Activity,
    "A page of activities (Relay connection).",
    "An edge in a list of activities: one node and its cursor."
);

#[ComplexObject]
impl Activity {
    /// The lead this activity belongs to.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Arc<Lead>> {
        lead_of(ctx, self.lead_id.key()?, &self.joined).await
    }

    /// The call's conversation, when it connected.
    async fn conversation(&self, ctx: &Context<'_>) -> Result<Option<Arc<Conversation>>> {
        if !*self.has_conversation.key()? {
            return Ok(None);
        }
        if let Some(found) = self.joined.get::<Conversation>("conversation") {
            return Ok(found);
        }
        look_up::<Conversation>(ctx, conversation::Column::ActivityId, self.id.key()?).await
    }

    /// The platform's analysis of the call.
    async fn analysis(&self, ctx: &Context<'_>) -> Result<Option<Arc<Analysis>>> {
        if let Some(found) = self.joined.get::<Analysis>("analysis") {
            return Ok(found);
        }
        look_up::<Analysis>(ctx, analysis::Column::ActivityId, self.id.key()?).await
    }

    /// Where this activity sits in the `activityRecorded` feed: pass it as
    /// that subscription's `after` to resume after it. Null outside the
    /// feed.
    async fn recorded_cursor(&self) -> Option<String> {
        self.joined
            .attached::<super::live::Recorded>()
            .map(|entry| entry.0.to_string())
    }
}

/// The activity `id` (every stored row of an activity has one) of a row
/// read with `joined`: its `activity` join, else as `lead_of` finds a lead.
pub(crate) async fn activity_of(
    ctx: &Context<'_>,
    id: &ID,
    joined: &Joined,
) -> Result<Arc<Activity>> {
    if let Some(Some(activity)) = joined.get::<Activity>("activity") {
        return Ok(activity);
    }
    if let Some(shared) = super::live::activity(ctx, joined, id.as_str()).await {
        return shared;
    }
    look_up::<Activity>(ctx, activity::Column::Id, id)
        .await?
        .ok_or_else(|| super::live::not_found("activity", id.as_str()))
}

/// The root fields for activities.
#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// One activity by its `activityId` (null when unknown).
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Activity>> {
        let r = reader(ctx);
        let select = r
            .find::<activity::Entity>()
            .filter(activity::Column::Id.eq(id.to_string()));
        one(ctx, r, select).await
    }

    /// Activities of all leads, oldest first unless `orderBy` says otherwise.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
        order_by: Option<Vec<ActivityOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ActivityConnection> {
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<activity::Entity>().filter(cond);
        let reading = reading(ctx, r, filter.as_ref(), order_by.as_deref()).await?;
        let key = activity_key(order_by.as_deref());
        let (page, total) = root_by(ctx, r, select, reading, key, args).await?;
        let total = match variable_total(r, filter.as_ref()) {
            Some(total) => total,
            None => activities_total(r, filter.as_ref())?.unwrap_or(total),
        };
        Ok(ActivityConnection::from_page(page, total))
    }
}
