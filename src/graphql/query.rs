//! The root query: each resource's root fields, then the aggregates.

use super::aggregate::AggregateQuery;
use super::resources::activity::ActivityQuery;
use super::resources::analysis::AnalysisQuery;
use super::resources::callback::CallbackQuery;
use super::resources::conversation::ConversationQuery;
use super::resources::lead::LeadQuery;
use super::resources::tool_call::ToolCallQuery;
use async_graphql::MergedObject;

/// Lead histories, call outcomes and their aggregates.
#[derive(MergedObject, Default)]
pub struct Query(
    LeadQuery,
    ActivityQuery,
    ConversationQuery,
    AnalysisQuery,
    ToolCallQuery,
    CallbackQuery,
    AggregateQuery,
);
