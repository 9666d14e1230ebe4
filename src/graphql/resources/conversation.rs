//! Conversations: the transcript side of a connected call.

use super::activity::{activity_of, Activity};
use super::lead::{lead_of, Lead};
use super::message::{message_key, Message, MessageConnection};
use super::tool_call::{
    tool_call_key, ToolCall, ToolCallConnection, ToolCallFilter, ToolCallOrderBy,
};
use super::{condition, reader, shape};
use crate::graphql::engine::connection::{connection, cost, nested, one, root};
use crate::graphql::engine::filter;
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{KeyPart, PageArgs, SortKey};
use crate::graphql::engine::resource::resource;
use crate::graphql::engine::search;
use async_graphql::{ComplexObject, Context, Json, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::{conversation, message, tool_call};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, Condition, QueryFilter};
use std::sync::Arc;

/// The conversation of a connected call.
#[resource(
    entity = conversation,
    filter = ConversationFilter,
    filter_doc = "Which conversations to include.",
    order = ConversationOrderField,
    order_doc = "Fields conversations can be sorted by.",
    complex
)]
pub struct Conversation {
    /// The conversation id: the platform's `conversationId`, or the
    /// activity id when the platform sent none.
    #[filter_only(with = id_condition)]
    id: filter::StringFilter,
    /// The call this conversation belongs to.
    #[field(key, filter)]
    activity_id: ID,
    /// The lead.
    #[field(key, filter)]
    lead_id: ID,
    /// The platform's `conversationId` as sent (null when absent).
    #[field(key)]
    conversation_id: Option<String>,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// The conversation's own `flowId` (may differ from the activity's).
    #[field(filter)]
    flow_id: Option<String>,
    /// The media stream id.
    #[field(filter)]
    stream_id: Option<String>,
    /// The telephony call id.
    #[field(personal, filter)]
    call_sid: Option<String>,
    /// A hash of the number called.
    #[field(personal, filter)]
    phone_hash: Option<String>,
    /// How many turns the conversation had.
    #[field(filter)]
    turn_count: Option<i32>,
    /// Whether the platform reconciled the transcript.
    #[field(filter)]
    reconciled: Option<bool>,
    /// When the conversation started.
    #[field(filter)]
    created_at: Option<DateTime<Utc>>,
    /// When the conversation was last updated.
    #[field(filter)]
    updated_at: Option<DateTime<Utc>>,
    /// The time of the conversation's activity.
    #[field(filter, sort)]
    timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
    /// Conversations with a transcript message containing this text,
    /// ignoring case (index-backed).
    #[filter_only(with = search::conversations, personal)]
    search: String,
}

/// The conversation id as stored: `conversationId`, else the activity id.
fn id_condition(f: &filter::StringFilter, at: filter::Against) -> Condition {
    let id: Expr = Func::coalesce([
        Expr::col(conversation::Column::ConversationId),
        Expr::col(conversation::Column::ActivityId),
    ])
    .into();
    filter::string(id, f, false, at.backend)
}

order_input!(
    ConversationOrderBy,
    ConversationOrderField,
    conversation,
    "How to sort conversations; ties are broken by activity id. Default: TIMESTAMP ASC."
);

/// The sort key of `orderBy` (by time, oldest first unless DESC), then the
/// activity id.
pub fn conversation_key(order: Option<&[ConversationOrderBy]>) -> SortKey<conversation::Entity> {
    let desc = order
        .and_then(|o| o.first())
        .map(|o| o.direction.desc())
        .unwrap_or(false);
    SortKey::new(
        vec![ConversationOrderField::Timestamp.part(desc)],
        vec![KeyPart::of::<ID>(
            "activityId",
            conversation::Column::ActivityId,
            false,
        )],
    )
}

connection!(
    ConversationConnection,
    ConversationEdge,
    Conversation,
    "A page of conversations (Relay connection).",
    "An edge in a list of conversations: one node and its cursor."
);

#[ComplexObject]
impl Conversation {
    /// The platform's `conversationId`, or the activity id when it sent none.
    async fn id(&self) -> Result<ID> {
        Ok(match self.conversation_id.key()? {
            Some(id) => ID(id.clone()),
            None => self.activity_id.key()?.clone(),
        })
    }

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
        let shape = format!("{args:?}");
        let (page, total) = nested::<Message>(
            ctx,
            message::Column::ActivityId,
            self.activity_id.key()?,
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
        let key = tool_call_key(order_by.as_deref());
        let (page, total) = nested::<ToolCall>(
            ctx,
            tool_call::Column::ActivityId,
            self.activity_id.key()?,
            cond,
            shape,
            key,
            args,
        )
        .await?;
        Ok(ToolCallConnection::from_shared(page, total))
    }

    /// The call this conversation belongs to.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Arc<Activity>> {
        activity_of(ctx, self.activity_id.key()?, &self.joined).await
    }

    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Arc<Lead>> {
        lead_of(ctx, self.lead_id.key()?, &self.joined).await
    }
}

/// The root fields for conversations.
#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// One conversation by its id: the platform's `conversationId`, or the
    /// id of its activity.
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Conversation>> {
        let r = reader(ctx);
        let select = r.find::<conversation::Entity>().filter(
            Condition::any()
                .add(conversation::Column::ConversationId.eq(id.to_string()))
                .add(conversation::Column::ActivityId.eq(id.to_string())),
        );
        one(ctx, r, select).await
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
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<conversation::Entity>().filter(cond);
        let key = conversation_key(order_by.as_deref());
        let (page, total) = root(ctx, r, select, key, args).await?;
        Ok(ConversationConnection::from_page(page, total))
    }
}
