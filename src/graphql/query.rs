//! The root query fields.

use super::aggregate::{self, CallStats, DispositionCount, TimeBucket};
use super::connection::{cost, db_error, root};
use super::filter::{
    condition_of, ActivityFilter, AnalysisFilter, ConversationFilter, LeadFilter, ToolCallFilter,
};
use super::order::{
    activity_key, analysis_key, conversation_key, lead_key, tool_call_key, ActivityOrderBy,
    AnalysisOrderBy, ConversationOrderBy, LeadOrderBy, ToolCallOrderBy,
};
use super::page::PageArgs;
use super::types::{
    Activity, ActivityConnection, AnalysisConnection, Conversation, ConversationConnection, Lead,
    LeadConnection, ToolCallConnection,
};
use crate::store::read::Reader;
use async_graphql::{Context, Object, Result, ID};
use entity::{activity, analysis, conversation, lead, tool_call};
use sea_orm::{ColumnTrait, Condition, DbBackend, QueryFilter};

fn reader<'a>(ctx: &'a Context<'_>) -> &'a Reader {
    ctx.data_unchecked::<Reader>()
}

fn backend(ctx: &Context<'_>) -> DbBackend {
    reader(ctx).db().get_database_backend()
}

/// Lead histories, call outcomes and their aggregates.
pub struct Query;

/// Lead histories, call outcomes and their aggregates.
#[Object]
impl Query {
    /// One lead by its `leadId` (null when unknown).
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Lead>> {
        let r = reader(ctx);
        let found = r
            .find::<lead::Entity>()
            .filter(lead::Column::Id.eq(id.to_string()))
            .one(r.db())
            .await
            .map_err(|e| db_error(&e))?;
        Ok(found.map(Lead::from))
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
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (page, total) = root(
            r,
            r.find::<lead::Entity>().filter(cond),
            lead_key(order_by.as_deref()),
            args,
        )
        .await?;
        Ok(LeadConnection::from_page(page, total))
    }

    /// One activity by its `activityId` (null when unknown).
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Activity>> {
        let r = reader(ctx);
        let found = r
            .find::<activity::Entity>()
            .filter(activity::Column::Id.eq(id.to_string()))
            .one(r.db())
            .await
            .map_err(|e| db_error(&e))?;
        Ok(found.map(Activity::from))
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
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (page, total) = root(
            r,
            r.find::<activity::Entity>().filter(cond),
            activity_key(order_by.as_deref()),
            args,
        )
        .await?;
        Ok(ActivityConnection::from_page(page, total))
    }

    /// One conversation by its id: the platform's `conversationId`, or the
    /// id of its activity.
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Conversation>> {
        let r = reader(ctx);
        let found = r
            .find::<conversation::Entity>()
            .filter(
                Condition::any()
                    .add(conversation::Column::ConversationId.eq(id.to_string()))
                    .add(conversation::Column::ActivityId.eq(id.to_string())),
            )
            .one(r.db())
            .await
            .map_err(|e| db_error(&e))?;
        Ok(found.map(Conversation::from))
    }

    /// Conversations (transcripts), oldest first.
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
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (page, total) = root(
            r,
            r.find::<conversation::Entity>().filter(cond),
            conversation_key(order_by.as_deref()),
            args,
        )
        .await?;
        Ok(ConversationConnection::from_page(page, total))
    }

    /// Call analyses, oldest first.
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
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (page, total) = root(
            r,
            r.find::<analysis::Entity>().filter(cond),
            analysis_key(order_by.as_deref()),
            args,
        )
        .await?;
        Ok(AnalysisConnection::from_page(page, total))
    }

    /// Tool calls the agents made, oldest first.
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
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (page, total) = root(
            r,
            r.find::<tool_call::Entity>().filter(cond),
            tool_call_key(order_by.as_deref()),
            args,
        )
        .await?;
        Ok(ToolCallConnection::from_page(page, total))
    }

    /// Call outcomes: activities per analysis disposition (activities
    /// without one are not counted), per HOUR / DAY / WEEK when `bucket`
    /// is given (UTC; weeks start on Monday).
    async fn disposition_counts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
        bucket: Option<TimeBucket>,
    ) -> Result<Vec<DispositionCount>> {
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        aggregate::disposition_counts(reader(ctx), cond, bucket).await
    }

    /// Leads per current disposition, most frequent first; leads without a
    /// disposition yet are one group with a null disposition.
    async fn lead_funnel(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilter>,
    ) -> Result<Vec<DispositionCount>> {
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        aggregate::lead_funnel(reader(ctx), cond).await
    }

    /// Attempts, connections, connect rate, mean turns and tool calls over
    /// the activities the filter selects.
    async fn call_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
    ) -> Result<CallStats> {
        let cond = condition_of(filter.as_ref(), backend(ctx))?;
        aggregate::call_stats(reader(ctx), cond).await
    }
}
