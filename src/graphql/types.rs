//! The GraphQL object types. They are built from the sea-orm models
//! (`From<Model>`), so the `entity` crate knows nothing of GraphQL.

use super::connection::{connection, cost, nested, Nested};
use super::filter::{
    condition_of, ActivityFilter, AnalysisFilter, ConversationFilter, Filter, ToolCallFilter,
};
use super::loader::{ActivityById, AnalysisOf, ConversationOf, LeadById, Loaders, UpdatesOf};
use super::order::{
    activity_key, analysis_key, conversation_key, event_key, message_key, tool_call_key,
    ActivityOrderBy, AnalysisOrderBy, ConversationOrderBy, ToolCallOrderBy,
};
use super::page::PageArgs;
use crate::store::read::Reader;
use async_graphql::{ComplexObject, Context, Json, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entity::{
    activity, analysis, conversation, disposition_event, lead, lead_update, message, tool_call,
};
use sea_orm::{Condition, DbBackend};
use std::sync::Arc;

/// Epoch milliseconds as a UTC time.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn time_opt(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

fn json(v: Option<serde_json::Value>) -> Option<Json<serde_json::Value>> {
    v.map(Json)
}

fn reader<'a>(ctx: &'a Context<'_>) -> &'a Reader {
    ctx.data_unchecked::<Reader>()
}

fn backend(ctx: &Context<'_>) -> DbBackend {
    reader(ctx).db().get_database_backend()
}

fn loaders<'a>(ctx: &'a Context<'_>) -> &'a Arc<Loaders> {
    ctx.data_unchecked::<Arc<Loaders>>()
}

/// The condition of an optional filter plus a description of the
/// arguments, so siblings asking the same thing share one statement.
fn shape<F: Filter + std::fmt::Debug, O: std::fmt::Debug>(
    ctx: &Context<'_>,
    filter: Option<&F>,
    order: &O,
    args: &PageArgs,
) -> Result<(Condition, String)> {
    let cond = condition_of(filter, backend(ctx))?;
    Ok((cond, format!("{filter:?}|{order:?}|{args:?}")))
}

fn load_err(e: Arc<sea_orm::DbErr>) -> async_graphql::Error {
    super::connection::db_error(&e)
}

/// The lead a row belongs to (every stored activity has one).
async fn lead_of(ctx: &Context<'_>, id: &ID) -> Result<Lead> {
    loaders(ctx)
        .load_one(LeadById(id.to_string()))
        .await
        .map_err(load_err)?
        .map(Lead::from)
        .ok_or_else(|| async_graphql::Error::new(format!("lead {} not found", id.as_str())))
}

/// The activity a row belongs to.
async fn activity_of(ctx: &Context<'_>, id: &ID) -> Result<Activity> {
    loaders(ctx)
        .load_one(ActivityById(id.to_string()))
        .await
        .map_err(load_err)?
        .map(Activity::from)
        .ok_or_else(|| async_graphql::Error::new(format!("activity {} not found", id.as_str())))
}

/// A person the platform calls. Current fields (state, disposition,
/// summary) come from the newest activity by timestamp that carries them,
/// whatever order the deliveries arrived in.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Lead {
    /// The platform's `leadId`.
    pub id: ID,
    /// The client's own id for the lead (`referenceId`).
    pub reference_id: Option<String>,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// The calling process (which defines the dispositions).
    pub process_id: Option<String>,
    /// The lead's name as the platform last sent it (`result.input.name`).
    pub name: Option<String>,
    /// `toState` of the newest activity that has one.
    pub state: Option<String>,
    /// The newest disposition (e.g. "Interested").
    pub disposition: Option<String>,
    /// The type the analysis gave the current disposition, as sent
    /// (`success`, `failure`, `neutral`, or e.g. `positive`).
    pub disposition_type: Option<String>,
    /// The newest lead summary.
    pub summary: Option<String>,
    /// Time of the newest activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Time of the oldest activity.
    pub first_activity_at: Option<DateTime<Utc>>,
    /// How many activities the lead has.
    pub activity_count: i32,
    #[graphql(skip)]
    pub last_activity_id: Option<String>,
}

impl From<lead::Model> for Lead {
    fn from(m: lead::Model) -> Self {
        Lead {
            id: ID(m.id),
            reference_id: m.reference_id,
            project_id: m.project_id,
            process_id: m.process_id,
            name: m.name,
            state: m.state,
            disposition: m.disposition,
            disposition_type: m.disposition_type,
            summary: m.summary,
            last_activity_at: time_opt(m.last_activity_at),
            first_activity_at: time_opt(m.first_activity_at),
            activity_count: m.activity_count,
            last_activity_id: m.last_activity_id,
        }
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
        let how = Nested {
            parent: activity::Column::LeadId,
            parent_of: |m: &activity::Model| m.lead_id.as_str(),
        };
        let key = activity_key(order_by.as_deref());
        let (page, total) = nested(ctx, reader(ctx), &self.id, how, cond, shape, key, args).await?;
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
        let how = Nested {
            parent: conversation::Column::LeadId,
            parent_of: |m: &conversation::Model| m.lead_id.as_str(),
        };
        let key = conversation_key(order_by.as_deref());
        let (page, total) = nested(ctx, reader(ctx), &self.id, how, cond, shape, key, args).await?;
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
        let how = Nested {
            parent: analysis::Column::LeadId,
            parent_of: |m: &analysis::Model| m.lead_id.as_str(),
        };
        let key = analysis_key(order_by.as_deref());
        let (page, total) = nested(ctx, reader(ctx), &self.id, how, cond, shape, key, args).await?;
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
        let how = Nested {
            parent: tool_call::Column::LeadId,
            parent_of: |m: &tool_call::Model| m.lead_id.as_str(),
        };
        let key = tool_call_key(order_by.as_deref());
        let (page, total) = nested(ctx, reader(ctx), &self.id, how, cond, shape, key, args).await?;
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
        let how = Nested {
            parent: disposition_event::Column::LeadId,
            parent_of: |m: &disposition_event::Model| m.lead_id.as_str(),
        };
        let shape = format!("{args:?}");
        let (page, total) = nested(
            ctx,
            reader(ctx),
            &self.id,
            how,
            Condition::all(),
            shape,
            event_key(),
            args,
        )
        .await?;
        Ok(DispositionEventConnection::from_shared(page, total))
    }

    /// Results of the platform's "update lead" calls for this lead, oldest
    /// first.
    async fn updates(&self, ctx: &Context<'_>) -> Result<Vec<LeadUpdate>> {
        let rows = loaders(ctx)
            .load_one(UpdatesOf(self.id.to_string()))
            .await
            .map_err(load_err)?
            .unwrap_or_default();
        Ok(rows.iter().cloned().map(LeadUpdate::from).collect())
    }

    /// The newest activity.
    async fn last_activity(&self, ctx: &Context<'_>) -> Result<Option<Activity>> {
        let Some(id) = &self.last_activity_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .load_one(ActivityById(id.clone()))
            .await
            .map_err(load_err)?
            .map(Activity::from))
    }
}

/// One thing the platform did for a lead: a call attempt, a schedule, a
/// state change. The current version of each `activityId`.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Activity {
    /// The platform's `activityId`.
    pub id: ID,
    /// The lead's `leadId`.
    pub lead_id: ID,
    /// `action_type` of the payload (`create`, `update`, …).
    pub action_type: Option<String>,
    /// `activity.type` (`call`, `schedule`, …).
    #[graphql(name = "type")]
    pub r#type: Option<String>,
    /// `activity.status`.
    pub status: Option<String>,
    /// `activity.fromState`: the lead's state before.
    pub from_state: Option<String>,
    /// `activity.toState`: the lead's state after.
    pub to_state: Option<String>,
    /// `result.nextState`.
    pub next_state: Option<String>,
    /// `activity.scheduledAt`: when the activity was scheduled for.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The payload's `timestamp`: when this version of the activity happened.
    pub timestamp: DateTime<Utc>,
    /// `result.callStatus` (`completed`, `busy`, `no-answer`, …).
    pub call_status: Option<String>,
    /// `result.status`.
    pub result_status: Option<String>,
    /// `result.success`.
    pub result_success: Option<bool>,
    /// Which call attempt this was (1 = first).
    pub attempt_number: Option<i32>,
    /// The platform's attempt log id.
    pub attempt_log_id: Option<String>,
    /// `metadata.isConnected`, as sent.
    pub is_connected: Option<bool>,
    /// `result.channelId`.
    pub channel_id: Option<i64>,
    /// `result.wsId`.
    pub ws_id: Option<i64>,
    /// `result.telephonyType` (e.g. `provider`).
    pub telephony_type: Option<String>,
    /// `result.hasTransfer`: the call was transferred.
    pub has_transfer: Option<bool>,
    /// `result.flowId` (the conversation may name another flow).
    pub flow_id: Option<String>,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// The calling process (which defines the dispositions).
    pub process_id: Option<String>,
    /// The client's own id for the lead.
    pub reference_id: Option<String>,
    /// `lastActivityId` of the payload: the lead's activity before this one.
    pub last_activity_id: Option<String>,
    /// The platform's `conversationId`, when it sent one.
    pub conversation_id: Option<String>,
    /// The telephony provider's call id.
    pub provider_call_id: Option<String>,
    /// `result.input.name`.
    pub lead_name: Option<String>,
    /// `result.input`: what the flow was given.
    pub input: Option<Json<serde_json::Value>>,
    /// `result.variables`: what the call extracted (the platform nests the
    /// values under `variables.variables`).
    pub variables: Option<Json<serde_json::Value>>,
    /// `metadata`, as sent.
    pub metadata: Option<Json<serde_json::Value>>,
    /// Fields of the payload leadql has no column for, by level
    /// (`payload`, `activity`, `result`).
    pub extra: Option<Json<serde_json::Value>>,
    /// The payload's `leadSummary` after this activity.
    pub lead_summary: Option<String>,
    /// The payload's `leadDisposition` after this activity.
    pub lead_disposition: Option<String>,
    /// The analysis disposition of this call.
    pub disposition: Option<String>,
    /// The analysis disposition type of this call, as sent.
    pub disposition_type: Option<String>,
    /// The call has a conversation (transcript).
    pub has_conversation: bool,
}

impl From<activity::Model> for Activity {
    fn from(m: activity::Model) -> Self {
        Activity {
            id: ID(m.id),
            lead_id: ID(m.lead_id),
            action_type: m.action_type,
            r#type: m.r#type,
            status: m.status,
            from_state: m.from_state,
            to_state: m.to_state,
            next_state: m.next_state,
            scheduled_at: time_opt(m.scheduled_at),
            timestamp: time(m.timestamp),
            call_status: m.call_status,
            result_status: m.result_status,
            result_success: m.result_success,
            attempt_number: m.attempt_number,
            attempt_log_id: m.attempt_log_id,
            is_connected: m.is_connected,
            channel_id: m.channel_id,
            ws_id: m.ws_id,
            telephony_type: m.telephony_type,
            has_transfer: m.has_transfer,
            flow_id: m.flow_id,
            project_id: m.project_id,
            process_id: m.process_id,
            reference_id: m.reference_id,
            last_activity_id: m.last_activity_id,
            conversation_id: m.conversation_id,
            provider_call_id: m.provider_call_id,
            lead_name: m.lead_name,
            input: json(m.input),
            variables: json(m.variables),
            metadata: json(m.metadata),
            extra: json(m.extra),
            lead_summary: m.lead_summary,
            lead_disposition: m.lead_disposition,
            disposition: m.analysis_disposition,
            disposition_type: m.analysis_disposition_type,
            has_conversation: m.has_conversation,
        }
    }
}

#[ComplexObject]
impl Activity {
    /// The lead this activity belongs to.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Lead> {
        lead_of(ctx, &self.lead_id).await
    }

    /// The call's conversation, when it connected.
    async fn conversation(&self, ctx: &Context<'_>) -> Result<Option<Conversation>> {
        if !self.has_conversation {
            return Ok(None);
        }
        Ok(loaders(ctx)
            .load_one(ConversationOf(self.id.to_string()))
            .await
            .map_err(load_err)?
            .map(Conversation::from))
    }

    /// The platform's analysis of the call.
    async fn analysis(&self, ctx: &Context<'_>) -> Result<Option<Analysis>> {
        Ok(loaders(ctx)
            .load_one(AnalysisOf(self.id.to_string()))
            .await
            .map_err(load_err)?
            .map(Analysis::from))
    }
}

/// The conversation of a connected call.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Conversation {
    /// The platform's `conversationId`, or the activity id when it sent none.
    pub id: ID,
    /// The call this conversation belongs to.
    pub activity_id: ID,
    /// The lead.
    pub lead_id: ID,
    /// The platform's `conversationId` as sent (null when absent).
    pub conversation_id: Option<String>,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// The conversation's own `flowId` (may differ from the activity's).
    pub flow_id: Option<String>,
    /// The media stream id.
    pub stream_id: Option<String>,
    /// The telephony call id.
    pub call_sid: Option<String>,
    /// A hash of the number called.
    pub phone_hash: Option<String>,
    /// How many turns the conversation had.
    pub turn_count: Option<i32>,
    /// Whether the platform reconciled the transcript.
    pub reconciled: Option<bool>,
    /// When the conversation started.
    pub created_at: Option<DateTime<Utc>>,
    /// When the conversation was last updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// The time of the conversation's activity.
    pub timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    pub extra: Option<Json<serde_json::Value>>,
}

impl From<conversation::Model> for Conversation {
    fn from(m: conversation::Model) -> Self {
        Conversation {
            id: ID(m
                .conversation_id
                .clone()
                .unwrap_or_else(|| m.activity_id.clone())),
            activity_id: ID(m.activity_id),
            lead_id: ID(m.lead_id),
            conversation_id: m.conversation_id,
            project_id: m.project_id,
            flow_id: m.flow_id,
            stream_id: m.stream_id,
            call_sid: m.call_sid,
            phone_hash: m.phone_hash,
            turn_count: m.turn_count,
            reconciled: m.reconciled,
            created_at: time_opt(m.created_at),
            updated_at: time_opt(m.updated_at),
            timestamp: time(m.timestamp),
            extra: json(m.extra),
        }
    }
}

#[ComplexObject]
impl Conversation {
    /// The transcript, in the order the platform sent it.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<MessageConnection> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let how = Nested {
            parent: message::Column::ActivityId,
            parent_of: |m: &message::Model| m.activity_id.as_str(),
        };
        let shape = format!("{args:?}");
        let (page, total) = nested(
            ctx,
            reader(ctx),
            &self.activity_id,
            how,
            Condition::all(),
            shape,
            message_key(),
            args,
        )
        .await?;
        Ok(MessageConnection::from_shared(page, total))
    }

    /// Tool calls the agent made in this conversation, oldest first.
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
        let how = Nested {
            parent: tool_call::Column::ActivityId,
            parent_of: |m: &tool_call::Model| m.activity_id.as_str(),
        };
        let key = tool_call_key(order_by.as_deref());
        let (page, total) = nested(
            ctx,
            reader(ctx),
            &self.activity_id,
            how,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(ToolCallConnection::from_shared(page, total))
    }

    /// The call this conversation belongs to.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Activity> {
        activity_of(ctx, &self.activity_id).await
    }

    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Lead> {
        lead_of(ctx, &self.lead_id).await
    }
}

/// One turn of a transcript.
#[derive(SimpleObject, Clone, Debug)]
pub struct Message {
    /// Who spoke (`user`, `assistant`, …), as sent.
    pub role: String,
    /// What was said.
    pub content: String,
    /// When it was said, when the platform sent a time.
    pub timestamp: Option<DateTime<Utc>>,
    /// 0-based place in the transcript.
    pub position: i32,
    /// Fields leadql has no column for.
    pub extra: Option<Json<serde_json::Value>>,
}

impl From<message::Model> for Message {
    fn from(m: message::Model) -> Self {
        Message {
            role: m.role,
            content: m.content,
            timestamp: time_opt(m.timestamp),
            position: m.position,
            extra: json(m.extra),
        }
    }
}

/// A tool the agent called during a conversation.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ToolCall {
    /// `<activityId>:<position>`, unique.
    pub id: ID,
    /// The platform's id of the call, when sent.
    pub tool_call_id: Option<String>,
    /// The tool's name (e.g. "scheduleExpertCallback").
    pub name: String,
    /// The arguments the agent passed, as sent.
    pub arguments: Option<Json<serde_json::Value>>,
    /// What the tool answered, as sent.
    pub response: Option<Json<serde_json::Value>>,
    /// `response.success`, when the response says.
    pub success: Option<bool>,
    /// The utterance that triggered the call.
    pub utterance_id: Option<String>,
    /// When the tool was called.
    pub timestamp: Option<DateTime<Utc>>,
    /// The call this tool call was made in.
    pub activity_id: ID,
    /// The lead.
    pub lead_id: ID,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// 0-based place among the conversation's tool calls.
    pub position: i32,
    /// Fields leadql has no column for.
    pub extra: Option<Json<serde_json::Value>>,
}

impl From<tool_call::Model> for ToolCall {
    fn from(m: tool_call::Model) -> Self {
        ToolCall {
            id: ID(format!("{}:{}", m.activity_id, m.position)),
            tool_call_id: m.tool_call_id,
            name: m.name,
            arguments: json(m.arguments),
            response: json(m.response),
            success: m.success,
            utterance_id: m.utterance_id,
            timestamp: time_opt(m.timestamp),
            activity_id: ID(m.activity_id),
            lead_id: ID(m.lead_id),
            project_id: m.project_id,
            position: m.position,
            extra: json(m.extra),
        }
    }
}

#[ComplexObject]
impl ToolCall {
    /// The call this tool call was made in.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Activity> {
        activity_of(ctx, &self.activity_id).await
    }
}

/// The platform's analysis of a call.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Analysis {
    /// The analysed activity.
    pub activity_id: ID,
    /// The lead.
    pub lead_id: ID,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// Whether the call reached its goal, as the platform judged it.
    pub success: Option<bool>,
    /// The outcome (e.g. "Interested"), as defined by the calling process.
    pub disposition: Option<String>,
    /// As sent (`success`, `failure`, `neutral`, or e.g. `positive`).
    pub disposition_type: Option<String>,
    /// The platform's summary of the call.
    pub summary: Option<String>,
    /// The analysis's own time.
    pub timestamp: Option<DateTime<Utc>>,
    /// The time of the analysed activity.
    pub activity_timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    pub extra: Option<Json<serde_json::Value>>,
}

impl From<analysis::Model> for Analysis {
    fn from(m: analysis::Model) -> Self {
        Analysis {
            activity_id: ID(m.activity_id),
            lead_id: ID(m.lead_id),
            project_id: m.project_id,
            success: m.success,
            disposition: m.disposition,
            disposition_type: m.disposition_type,
            summary: m.summary,
            timestamp: time_opt(m.timestamp),
            activity_timestamp: time(m.activity_timestamp),
            extra: json(m.extra),
        }
    }
}

#[ComplexObject]
impl Analysis {
    /// The analysed call.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Activity> {
        activity_of(ctx, &self.activity_id).await
    }

    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Lead> {
        lead_of(ctx, &self.lead_id).await
    }
}

/// The result of one of the platform's asynchronous "update lead" calls.
#[derive(SimpleObject, Clone, Debug)]
pub struct LeadUpdate {
    /// The platform's `updateId`.
    pub id: ID,
    /// The lead that was updated.
    pub lead_id: ID,
    /// `action_type` of the result.
    pub action_type: Option<String>,
    /// Whether the update succeeded.
    pub success: Option<bool>,
    /// Why the update failed (null on success).
    pub error: Option<String>,
    /// The client's own id for the lead.
    pub reference_id: Option<String>,
    /// What was updated (null on failure).
    pub data: Option<Json<serde_json::Value>>,
    /// When the platform reported the result.
    pub timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    pub extra: Option<Json<serde_json::Value>>,
}

impl From<lead_update::Model> for LeadUpdate {
    fn from(m: lead_update::Model) -> Self {
        LeadUpdate {
            id: ID(m.id),
            lead_id: ID(m.lead_id),
            action_type: m.action_type,
            success: m.success,
            error: m.error,
            reference_id: m.reference_id,
            data: json(m.data),
            timestamp: time(m.timestamp),
            extra: json(m.extra),
        }
    }
}

/// A lead's disposition taking a new value (the first one included).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct DispositionEvent {
    /// Where this event sits in the feed; resume a subscription after it.
    pub cursor: String,
    /// The lead whose disposition changed.
    pub lead_id: ID,
    /// The activity that caused the change.
    pub activity_id: ID,
    /// The project the lead belongs to.
    pub project_id: Option<String>,
    /// The disposition before (null for a lead's first).
    pub previous_disposition: Option<String>,
    /// The new disposition.
    pub disposition: String,
    /// The new disposition's type, as sent.
    pub disposition_type: Option<String>,
    /// When the activity that caused the change happened.
    pub occurred_at: DateTime<Utc>,
    /// When leadql recorded the change.
    pub recorded_at: DateTime<Utc>,
}

impl From<disposition_event::Model> for DispositionEvent {
    fn from(m: disposition_event::Model) -> Self {
        DispositionEvent {
            cursor: m.id.to_string(),
            lead_id: ID(m.lead_id),
            activity_id: ID(m.activity_id),
            project_id: m.project_id,
            previous_disposition: m.previous_disposition,
            disposition: m.disposition,
            disposition_type: m.disposition_type,
            occurred_at: time(m.occurred_at),
            recorded_at: time(m.recorded_at),
        }
    }
}

#[ComplexObject]
impl DispositionEvent {
    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Lead> {
        lead_of(ctx, &self.lead_id).await
    }

    /// The activity that caused the change.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Activity> {
        activity_of(ctx, &self.activity_id).await
    }
}

connection!(
    LeadConnection,
    LeadEdge,
    Lead,
    "A page of leads (Relay connection).",
    "An edge in a list of leads: one node and its cursor."
);
connection!(
    ActivityConnection,
    ActivityEdge,
    Activity,
    "A page of activities (Relay connection).",
    "An edge in a list of activities: one node and its cursor."
);
connection!(
    ConversationConnection,
    ConversationEdge,
    Conversation,
    "A page of conversations (Relay connection).",
    "An edge in a list of conversations: one node and its cursor."
);
connection!(
    MessageConnection,
    MessageEdge,
    Message,
    "A page of transcript messages (Relay connection).",
    "An edge in a list of transcript messages: one node and its cursor."
);
connection!(
    ToolCallConnection,
    ToolCallEdge,
    ToolCall,
    "A page of tool calls (Relay connection).",
    "An edge in a list of tool calls: one node and its cursor."
);
connection!(
    AnalysisConnection,
    AnalysisEdge,
    Analysis,
    "A page of analyses (Relay connection).",
    "An edge in a list of analyses: one node and its cursor."
);
connection!(
    DispositionEventConnection,
    DispositionEventEdge,
    DispositionEvent,
    "A page of disposition changes (Relay connection).",
    "An edge in a list of disposition changes: one node and its cursor."
);
