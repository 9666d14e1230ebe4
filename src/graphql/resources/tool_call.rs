//! Tool calls: what the agent asked its tools to do during a conversation.

use super::activity::{activity_of, Activity};
use super::{condition, reader};
use crate::graphql::engine::connection::{connection, cost, root};
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{KeyPart, PageArgs, SortKey};
use crate::graphql::engine::resource::resource;
use async_graphql::{ComplexObject, Context, Json, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::tool_call;
use sea_orm::QueryFilter;
use std::sync::Arc;

/// A tool the agent called during a conversation.
#[resource(
    entity = tool_call,
    filter = ToolCallFilter,
    filter_doc = "Which tool calls to include.",
    order = ToolCallOrderField,
    order_doc = "Fields tool calls can be sorted by.",
    complex
)]
pub struct ToolCall {
    /// The platform's id of the call, when sent.
    #[field(filter)]
    tool_call_id: Option<String>,
    /// The tool's name (e.g. "scheduleExpertCallback").
    #[field(filter, sort)]
    name: String,
    /// The arguments the agent passed, as sent.
    #[field(personal)]
    arguments: Option<Json<serde_json::Value>>,
    /// What the tool answered, as sent.
    #[field(personal)]
    response: Option<Json<serde_json::Value>>,
    /// `response.success`, when the response says.
    #[field(filter)]
    success: Option<bool>,
    /// The utterance that triggered the call.
    #[field(filter)]
    utterance_id: Option<String>,
    /// When the tool was called.
    #[field(filter, sort)]
    timestamp: Option<DateTime<Utc>>,
    /// The call this tool call was made in.
    #[field(key, filter)]
    activity_id: ID,
    /// The lead.
    #[field(filter)]
    lead_id: ID,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// 0-based place among the conversation's tool calls.
    #[field(key)]
    position: i32,
    /// Fields leadql has no column for.
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
}

order_input!(
    ToolCallOrderBy,
    ToolCallOrderField,
    tool_call,
    "How to sort tool calls; ties are broken by activity and position. Default: TIMESTAMP ASC."
);

/// The sort key of `orderBy` (default: oldest first), then the call and
/// the position in it.
pub fn tool_call_key(order: Option<&[ToolCallOrderBy]>) -> SortKey<tool_call::Entity> {
    let parts = match order {
        Some(o) if !o.is_empty() => o.iter().map(ToolCallOrderBy::part).collect(),
        _ => vec![ToolCallOrderField::Timestamp.part(false)],
    };
    SortKey::new(
        parts,
        vec![
            KeyPart::of::<ID>("activityId", tool_call::Column::ActivityId, false),
            KeyPart::of::<i32>("position", tool_call::Column::Position, false),
        ],
    )
}

connection!(
    ToolCallConnection,
    ToolCallEdge,
    ToolCall,
    "A page of tool calls (Relay connection).",
    "An edge in a list of tool calls: one node and its cursor."
);

#[ComplexObject]
impl ToolCall {
    /// `<activityId>:<position>`, unique.
    async fn id(&self) -> Result<ID> {
        Ok(ID(format!(
            "{}:{}",
            self.activity_id.key()?.as_str(),
            self.position.key()?
        )))
    }

    /// The call this tool call was made in.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Arc<Activity>> {
        activity_of(ctx, self.activity_id.key()?, &self.joined).await
    }
}

/// The root fields for tool calls.
#[derive(Default)]
pub struct ToolCallQuery;

#[Object]
impl ToolCallQuery {
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
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<tool_call::Entity>().filter(cond);
        let key = tool_call_key(order_by.as_deref());
        let (page, total) = root(ctx, r, select, key, args).await?;
        Ok(ToolCallConnection::from_page(page, total))
    }
}
