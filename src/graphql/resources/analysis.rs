//! Analyses: the platform's judgement of a call (disposition, summary).

use super::activity::{activity_of, Activity};
use super::lead::{lead_of, Lead};
use super::{condition, reader};
use crate::graphql::engine::connection::{connection, cost, root};
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{KeyPart, PageArgs, SortKey};
use crate::graphql::engine::resource::resource;
use crate::graphql::engine::search;
use async_graphql::{ComplexObject, Context, Json, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::analysis;
use sea_orm::QueryFilter;
use std::sync::Arc;

/// The platform's analysis of a call.
#[resource(
    entity = analysis,
    filter = AnalysisFilter,
    filter_doc = "Which analyses to include.",
    order = AnalysisOrderField,
    order_doc = "Fields analyses can be sorted by.",
    complex
)]
pub struct Analysis {
    /// The analysed activity.
    #[field(key, filter)]
    activity_id: ID,
    /// The lead.
    #[field(key, filter)]
    lead_id: ID,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// Whether the call reached its goal, as the platform judged it.
    #[field(filter)]
    success: Option<bool>,
    /// The outcome (e.g. "Interested"), as defined by the calling process.
    #[field(filter_ci)]
    disposition: Option<String>,
    /// As sent (`success`, `failure`, `neutral`, or e.g. `positive`).
    #[field(filter_ci)]
    disposition_type: Option<String>,
    /// The platform's summary of the call.
    #[field(personal, filter)]
    summary: Option<String>,
    /// The analysis's own time.
    #[field(filter)]
    timestamp: Option<DateTime<Utc>>,
    /// The time of the analysed activity.
    #[field(filter, sort)]
    activity_timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
    /// Analyses whose summary contains this text, ignoring case
    /// (index-backed).
    #[filter_only(with = search::analyses, personal)]
    search: String,
}

order_input!(
    AnalysisOrderBy,
    AnalysisOrderField,
    analysis,
    "How to sort analyses; ties are broken by activity id. Default: ACTIVITY_TIMESTAMP ASC."
);

/// The sort key of `orderBy` (by the call's time, oldest first unless
/// DESC), then the activity id.
pub fn analysis_key(order: Option<&[AnalysisOrderBy]>) -> SortKey<analysis::Entity> {
    let desc = order
        .and_then(|o| o.first())
        .map(|o| o.direction.desc())
        .unwrap_or(false);
    SortKey::new(
        vec![AnalysisOrderField::ActivityTimestamp.part(desc)],
        vec![KeyPart::of::<ID>(
            "activityId",
            analysis::Column::ActivityId,
            false,
        )],
    )
}

connection!(
    AnalysisConnection,
    AnalysisEdge,
    Analysis,
    "A page of analyses (Relay connection).",
    "An edge in a list of analyses: one node and its cursor."
);

#[ComplexObject]
impl Analysis {
    /// The analysed call.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Arc<Activity>> {
        activity_of(ctx, self.activity_id.key()?, &self.joined).await
    }

    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Arc<Lead>> {
        lead_of(ctx, self.lead_id.key()?, &self.joined).await
    }
}

/// The root fields for analyses.
#[derive(Default)]
pub struct AnalysisQuery;

#[Object]
impl AnalysisQuery {
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
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<analysis::Entity>().filter(cond);
        let key = analysis_key(order_by.as_deref());
        let (page, total) = root(ctx, r, select, key, args).await?;
        Ok(AnalysisConnection::from_page(page, total))
    }
}
