//! Leads: the people the platform calls. A lead row is a projection of its
//! activities (see `store::projection`).

use super::activity::{Activity, ActivityConnection, ActivityFilter, ActivityOrderBy};
use super::analysis::{Analysis, AnalysisConnection, AnalysisFilter, AnalysisOrderBy};
use super::callback::{Callback, CallbackConnection, CallbackFilter, CallbackOrderBy};
use super::conversation::{
    Conversation, ConversationConnection, ConversationFilter, ConversationOrderBy,
};
use super::disposition_event::{DispositionEvent, DispositionEventConnection};
use super::lead_update::{updates_of, LeadUpdate};
use super::timeline::{timeline_of, TimelineEntryConnection, TimelineKind};
use super::tool_call::{ToolCall, ToolCallConnection, ToolCallFilter, ToolCallOrderBy};
use super::{condition, look_up, reader, shape};
use crate::graphql::aggregate::leads_total;
use crate::graphql::engine::connection::{at_least, connection, cost, nested, one, paged, root_by};
use crate::graphql::engine::filter::Against;
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{PageArgs, Reading, SortKey};
use crate::graphql::engine::resource::{resource, Joined};
use crate::graphql::engine::search;
use crate::graphql::Limits;
use crate::store::read::Reader;
use async_graphql::{ComplexObject, Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::{activity, analysis, callback, conversation, disposition_event, lead, tool_call};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QuerySelect, QueryTrait};
use std::sync::Arc;

/// A person the platform calls. Current fields (state, disposition,
/// summary) come from the newest activity by timestamp that carries them,
/// whatever order the deliveries arrived in.
#[resource(
    entity = lead,
    filter = LeadFilter,
    filter_doc = "Which leads to include.",
    order = LeadOrderField,
    order_doc = "Fields leads can be sorted by.",
    complex
)]
pub struct Lead {
    /// The platform's `leadId`.
    #[field(key, filter, sort)]
    id: ID,
    /// The client's own id for the lead (`referenceId`).
    #[field(filter)]
    reference_id: Option<String>,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// The calling process (which defines the dispositions).
    #[field(filter)]
    process_id: Option<String>,
    /// The lead's name as the platform last sent it (`result.input.name`).
    #[field(personal, filter, sort)]
    name: Option<String>,
    /// `toState` of the newest activity that has one.
    #[field(filter)]
    state: Option<String>,
    /// The newest disposition (e.g. "Interested").
    #[field(filter_ci)]
    disposition: Option<String>,
    /// The type the analysis gave the current disposition, as sent
    /// (`success`, `failure`, `neutral`, or e.g. `positive`).
    #[field(filter_ci)]
    disposition_type: Option<String>,
    /// The newest lead summary.
    #[field(personal, filter)]
    summary: Option<String>,
    /// Time of the newest activity.
    #[field(filter, sort)]
    last_activity_at: Option<DateTime<Utc>>,
    /// Time of the oldest activity.
    #[field(filter, sort)]
    first_activity_at: Option<DateTime<Utc>>,
    /// How many activities the lead has.
    #[field(filter, sort)]
    activity_count: i32,
    /// The newest activity's id (see `lastActivity`).
    #[field(key, hidden)]
    last_activity_id: Option<String>,
    /// Leads whose summary, any analysis summary or any transcript message
    /// contains this text, ignoring case (index-backed for three
    /// characters or more).
    #[filter_only(with = search::leads, personal)]
    search: String,
}

/// How a page of leads in the default order (newest activity first)
/// finds the leads a `search` matches (alone or beside a `projectId`):
/// by walking the leads in order and asking each for a matching document,
/// which stops when the page is full, where that is cheaper than reading
/// every lead a matching document names and sorting them (at 100,000
/// leads on SQLite, 72-76 ms for the newest 50 of the 16,515 leads whose
/// calls mention "evening", 193-202 ms for "799").
/// - SQLite ([`search::lead_walk`]): when at least [`Limits::walk_from`]
///   leads match (1,000 unless a test says). With fewer, the walk could
///   pass over many leads for each one it keeps; the bounded count reads
///   at most what the list would.
/// - PostgreSQL ([`search::lead_probe`]): its trigram indexes give no
///   bounded count (the bitmap of every match comes first), so the page
///   walks at most [`Limits::walk_first`] leads, and reads the list when
///   those hold no more than a page (see [`Reading::First`]).
async fn reading(
    ctx: &Context<'_>,
    reader: &Reader,
    filter: Option<&LeadFilter>,
    order: Option<&[LeadOrderBy]>,
) -> Result<Reading<lead::Entity>> {
    let Some(f) = filter else {
        return Ok(Reading::List);
    };
    let Some(text) = f.search.as_deref() else {
        return Ok(Reading::List);
    };
    let alone = LeadFilter {
        search: f.search.clone(),
        project_id: f.project_id.clone(),
        ..Default::default()
    };
    let newest_first = order
        .unwrap_or_default()
        .iter()
        .all(|o| o.field == LeadOrderField::LastActivityAt);
    if *f != alone || !newest_first || !paged(ctx) {
        return Ok(Reading::List);
    }
    let at = Against::of(reader);
    let limits = ctx.data_unchecked::<Limits>();
    let rest = LeadFilter {
        search: None,
        ..f.clone()
    };
    let base = reader
        .find::<lead::Entity>()
        .filter(condition(ctx, Some(&rest))?);
    if let Some(probe) = search::lead_probe(text, at) {
        let rows = limits.walk_first;
        return Ok(Reading::First { base, probe, rows });
    }
    let Some(mut walk) = search::lead_walk(text, at) else {
        return Ok(Reading::List);
    };
    if f.project_id.is_some() || reader.projects().is_some() {
        let visible = LeadFilter {
            project_id: f.project_id.clone(),
            ..Default::default()
        };
        let leads = reader
            .find::<lead::Entity>()
            .filter(condition(ctx, Some(&visible))?)
            .select_only()
            .expr(Expr::val(1))
            .into_query();
        walk.among(leads, (lead::Entity, lead::Column::Id));
    }
    if !at_least(reader.db(), walk.matching, limits.walk_from).await? {
        return Ok(Reading::List);
    }
    Ok(Reading::Instead(base.filter(walk.probe)))
}

order_input!(
    LeadOrderBy,
    LeadOrderField,
    lead,
    "How to sort leads; ties are broken by id. Default: LAST_ACTIVITY_AT DESC."
);

/// The sort key of `orderBy`, then the id.
pub fn lead_key(order: Option<&[LeadOrderBy]>) -> SortKey<lead::Entity> {
    let parts = match order {
        Some(o) if !o.is_empty() => o.iter().map(LeadOrderBy::part).collect(),
        _ => vec![LeadOrderField::LastActivityAt.part(true)],
    };
    SortKey::new(parts, vec![LeadOrderField::Id.part(false)])
}

connection!(
    LeadConnection,
    LeadEdge,
    Lead,
    "A page of leads (Relay connection).",
    "An edge in a list of leads: one node and its cursor."
);

impl Lead {
    fn key(&self) -> Result<&str> {
        Ok(self.id.key()?.as_str())
    }
}

#[ComplexObject]
impl Lead {
    /// The lead's activities (call attempts, schedules, …), oldest first
    /// unless `orderBy` says otherwise.
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
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (cond, shape) = shape(ctx, filter.as_ref(), &order_by, &args)?;
        let key = super::activity::activity_key(order_by.as_deref());
        let (page, total) = nested::<Activity>(
            ctx,
            activity::Column::LeadId,
            self.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(ActivityConnection::from_shared(page, total))
    }

    /// Conversations (transcripts) of the lead's calls, oldest first.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilter>,
        order_by: Option<Vec<ConversationOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ConversationConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (cond, shape) = shape(ctx, filter.as_ref(), &order_by, &args)?;
        let key = super::conversation::conversation_key(order_by.as_deref());
        let (page, total) = nested::<Conversation>(
            ctx,
            conversation::Column::LeadId,
            self.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(ConversationConnection::from_shared(page, total))
    }

    /// The analyses of the lead's calls, oldest first.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn analyses(
        &self,
        ctx: &Context<'_>,
        filter: Option<AnalysisFilter>,
        order_by: Option<Vec<AnalysisOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<AnalysisConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (cond, shape) = shape(ctx, filter.as_ref(), &order_by, &args)?;
        let key = super::analysis::analysis_key(order_by.as_deref());
        let (page, total) = nested::<Analysis>(
            ctx,
            analysis::Column::LeadId,
            self.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(AnalysisConnection::from_shared(page, total))
    }

    /// Tool calls the agent made in the lead's calls, oldest first.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn tool_calls(
        &self,
        ctx: &Context<'_>,
        filter: Option<ToolCallFilter>,
        order_by: Option<Vec<ToolCallOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ToolCallConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (cond, shape) = shape(ctx, filter.as_ref(), &order_by, &args)?;
        let key = super::tool_call::tool_call_key(order_by.as_deref());
        let (page, total) = nested::<ToolCall>(
            ctx,
            tool_call::Column::LeadId,
            self.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(ToolCallConnection::from_shared(page, total))
    }

    /// Every change of the lead's disposition, oldest first.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    async fn disposition_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<DispositionEventConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let shape = format!("{args:?}");
        let (page, total) = nested::<DispositionEvent>(
            ctx,
            disposition_event::Column::LeadId,
            self.key()?,
            Condition::all(),
            shape,
            super::disposition_event::event_key(),
            args,
        )
        .await?;
        Ok(DispositionEventConnection::from_shared(page, total))
    }

    /// The callbacks promised to the lead, earliest moment first unless
    /// `orderBy` says otherwise.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn callbacks(
        &self,
        ctx: &Context<'_>,
        filter: Option<CallbackFilter>,
        order_by: Option<Vec<CallbackOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<CallbackConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (cond, shape) = shape(ctx, filter.as_ref(), &order_by, &args)?;
        let key = super::callback::callback_key(order_by.as_deref());
        let (page, total) = nested::<Callback>(
            ctx,
            callback::Column::LeadId,
            self.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(CallbackConnection::from_shared(page, total))
    }

    /// The callback still to make (PENDING or DUE), if any: a lead has
    /// at most one, its newest promise.
    async fn next_callback(&self, ctx: &Context<'_>) -> Result<Option<Arc<Callback>>> {
        look_up::<Callback>(ctx, callback::Column::OpenLeadId, self.key()?).await
    }

    /// Everything that happened to the lead, oldest first: activities,
    /// state and disposition changes, update results, and callbacks
    /// promised and come due (only `kinds`, when given).
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<TimelineKind>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<TimelineEntryConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        timeline_of(ctx, self.key()?, kinds.as_deref(), &args).await
    }

    /// Results of the platform's "update lead" calls for this lead, oldest
    /// first.
    async fn updates(&self, ctx: &Context<'_>) -> Result<Vec<LeadUpdate>> {
        updates_of(ctx, self.key()?).await
    }

    /// The newest activity.
    async fn last_activity(&self, ctx: &Context<'_>) -> Result<Option<Arc<Activity>>> {
        match self.last_activity_id.key()? {
            Some(id) => look_up::<Activity>(ctx, activity::Column::Id, id).await,
            None => Ok(None),
        }
    }
}

/// The lead `id` (every stored row of a lead has one) of a row read with
/// `joined`: the lead joined to the row (its `lead` join), else from the
/// rows shared by a live event's subscribers (when it arrived live), else
/// looked up.
pub(crate) async fn lead_of(ctx: &Context<'_>, id: &ID, joined: &Joined) -> Result<Arc<Lead>> {
    if let Some(Some(lead)) = joined.get::<Lead>("lead") {
        return Ok(lead);
    }
    if let Some(shared) = super::live::lead(ctx, joined, id.as_str()).await {
        return shared;
    }
    look_up::<Lead>(ctx, lead::Column::Id, id)
        .await?
        .ok_or_else(|| super::live::not_found("lead", id.as_str()))
}

/// The root fields for leads.
#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// One lead by its `leadId` (null when unknown).
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Lead>> {
        let r = reader(ctx);
        let select = r
            .find::<lead::Entity>()
            .filter(lead::Column::Id.eq(id.to_string()));
        one(ctx, r, select).await
    }

    /// Leads, newest activity first unless `orderBy` says otherwise.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilter>,
        order_by: Option<Vec<LeadOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<LeadConnection> {
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<lead::Entity>().filter(cond);
        let reading = reading(ctx, r, filter.as_ref(), order_by.as_deref()).await?;
        let key = lead_key(order_by.as_deref());
        let (page, total) = root_by(ctx, r, select, reading, key, args).await?;
        let total = leads_total(r, filter.as_ref())?.unwrap_or(total);
        Ok(LeadConnection::from_page(page, total))
    }
}
