//! Lead updates: the results of the platform's asynchronous "update lead"
//! calls, listed on their lead.

use super::{loaders, selected};
use crate::error::ApiError;
use crate::graphql::engine::loader::{Batch, LoadError};
use crate::graphql::engine::page::{narrow, rows};
use crate::graphql::engine::resource::{resource, ColumnSet, Resource};
use async_graphql::dataloader::Loader;
use async_graphql::{Context, Json, Result, ID};
use chrono::{DateTime, Utc};
use entity::lead_update;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;
use std::sync::Arc;

/// The result of one of the platform's asynchronous "update lead" calls.
#[resource(entity = lead_update)]
pub struct LeadUpdate {
    /// The platform's `updateId`.
    #[field(key)]
    id: ID,
    /// The lead that was updated.
    #[field(key)]
    lead_id: ID,
    /// `action_type` of the result.
    action_type: Option<String>,
    /// Whether the update succeeded.
    success: Option<bool>,
    /// Why the update failed (null on success).
    error: Option<String>,
    /// The client's own id for the lead.
    reference_id: Option<String>,
    /// What was updated (null on failure).
    #[field(personal)]
    data: Option<Json<serde_json::Value>>,
    /// When the platform reported the result.
    timestamp: DateTime<Utc>,
    /// Fields leadql has no column for.
    #[field(personal)]
    extra: Option<Json<serde_json::Value>>,
}

/// Every update result of a lead, oldest first, reading `cols`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdatesOf {
    lead: String,
    cols: ColumnSet,
}

impl Loader<UpdatesOf> for Batch {
    type Value = Arc<Vec<LeadUpdate>>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[UpdatesOf],
    ) -> Result<HashMap<UpdatesOf, Arc<Vec<LeadUpdate>>>, LoadError> {
        let cols = keys
            .iter()
            .fold(LeadUpdate::key_columns(), |set, k| set.union(k.cols));
        let select = self
            .reader
            .find::<lead_update::Entity>()
            .filter(lead_update::Column::LeadId.is_in(keys.iter().map(|k| k.lead.clone())))
            .order_by_asc(lead_update::Column::Timestamp)
            .order_by_asc(lead_update::Column::Id);
        let mut by_lead: HashMap<String, Vec<LeadUpdate>> = HashMap::new();
        for row in rows(self.reader.db(), narrow(select, cols))
            .await
            .map_err(Arc::new)?
        {
            let update = LeadUpdate::from_row(&row, cols).map_err(Arc::new)?;
            let lead = update
                .lead_id
                .get()
                .map(|id| id.to_string())
                .unwrap_or_default();
            by_lead.entry(lead).or_default().push(update);
        }
        Ok(keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    Arc::new(by_lead.get(&k.lead).cloned().unwrap_or_default()),
                )
            })
            .collect())
    }
}

/// The update results of `lead`, oldest first, batched with the same field
/// of sibling leads.
pub(crate) async fn updates_of(ctx: &Context<'_>, lead: &str) -> Result<Vec<LeadUpdate>> {
    let key = UpdatesOf {
        lead: lead.to_string(),
        cols: selected::<LeadUpdate>(ctx),
    };
    let found = loaders(ctx)
        .load_one(key)
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or_default();
    Ok(Arc::unwrap_or_clone(found))
}
