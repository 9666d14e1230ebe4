//! Disposition events: a lead's disposition taking a new value, recorded
//! at ingest (the `dispositionChanged` feed and `Lead.dispositionHistory`).

use super::activity::{activity_of, Activity};
use super::lead::{lead_of, Lead};
use super::loaders;
use crate::error::ApiError;
use crate::graphql::engine::connection::connection;
use crate::graphql::engine::loader::{Batch, LoadError};
use crate::graphql::engine::page::{KeyPart, SortKey};
use crate::graphql::engine::resource::resource;
use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Result, ID};
use chrono::{DateTime, Utc};
use entity::disposition_event;
use sea_orm::{ColumnTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::Arc;

/// A lead's disposition taking a new value (the first one included).
#[resource(
    entity = disposition_event,
    filter = DispositionEventFilter,
    filter_doc = "Which disposition changes to include (queries and subscriptions).",
    complex
)]
pub struct DispositionEvent {
    /// The event's place in the feed (see `cursor`).
    #[field(key, hidden)]
    id: i64,
    /// The lead whose disposition changed.
    #[field(key, filter)]
    lead_id: ID,
    /// The activity that caused the change.
    #[field(key)]
    activity_id: ID,
    /// The project the lead belongs to.
    #[field(filter)]
    project_id: Option<String>,
    /// The disposition before (null for a lead's first).
    #[field(filter_ci)]
    previous_disposition: Option<String>,
    /// The new disposition.
    #[field(filter_ci)]
    disposition: String,
    /// The new disposition's type, as sent.
    #[field(filter_ci)]
    disposition_type: Option<String>,
    /// When the activity that caused the change happened.
    #[field(filter)]
    occurred_at: DateTime<Utc>,
    /// When leadql recorded the change.
    recorded_at: DateTime<Utc>,
}

/// Feed order: the event id.
pub fn event_key() -> SortKey<disposition_event::Entity> {
    SortKey::new(
        vec![KeyPart::of::<i64>(
            "id",
            disposition_event::Column::Id,
            false,
        )],
        vec![],
    )
}

connection!(
    DispositionEventConnection,
    DispositionEventEdge,
    DispositionEvent,
    "A page of disposition changes (Relay connection).",
    "An edge in a list of disposition changes: one node and its cursor."
);

#[ComplexObject]
impl DispositionEvent {
    /// Where this event sits in the feed; resume a subscription after it.
    async fn cursor(&self) -> Result<String> {
        Ok(self.id.key()?.to_string())
    }

    /// The lead, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Arc<Lead>> {
        lead_of(ctx, self.lead_id.key()?, &self.joined).await
    }

    /// The activity that caused the change.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Arc<Activity>> {
        activity_of(ctx, self.activity_id.key()?, &self.joined).await
    }
}

/// A disposition event by its id (a timeline entry's), batched with the
/// same lookups of sibling fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventById(pub i64);

impl Loader<EventById> for Batch {
    type Value = Arc<DispositionEvent>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[EventById],
    ) -> Result<HashMap<EventById, Arc<DispositionEvent>>, LoadError> {
        let rows = self
            .reader
            .find::<disposition_event::Entity>()
            .filter(disposition_event::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(self.reader.db())
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (EventById(row.id), Arc::new(DispositionEvent::from(row))))
            .collect())
    }
}

/// The disposition event `id`, if this reader sees it.
pub(crate) async fn event_by_id(
    ctx: &Context<'_>,
    id: i64,
) -> Result<Option<Arc<DispositionEvent>>> {
    loaders(ctx)
        .load_one(EventById(id))
        .await
        .map_err(|e| ApiError::database(&e).into())
}
