//! The root subscription fields: live feeds over WebSocket (see `ws.rs`).

use super::engine::filter::condition_of;
use super::resources::activity::{Activity, ActivityFilter};
use super::resources::disposition_event::{DispositionEvent, DispositionEventFilter};
use super::resources::live;
use crate::error::bad_input;
use crate::error::ApiError;
use crate::feed::{Feed, Shared};
use crate::store::read::Reader;
use async_graphql::{Context, Result, Subscription as SubscriptionObject};
use entity::{activity, disposition_event};
use futures::Stream;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, QuerySelect};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

/// Events read from the table per query while catching up.
const CATCH_UP_PAGE: u64 = 500;

/// Live feeds.
pub struct Subscription;

fn feed<'a>(ctx: &'a Context<'_>) -> Result<&'a Feed> {
    ctx.data::<Feed>()
        .map_err(|_| async_graphql::Error::new("subscriptions are not available on this server"))
}

/// Matching stored events after `last`, oldest first, one page.
async fn stored_after(
    reader: &Reader,
    cond: &Condition,
    last: i64,
) -> Result<Vec<disposition_event::Model>> {
    reader
        .find::<disposition_event::Entity>()
        .filter(disposition_event::Column::Id.gt(last))
        .filter(cond.clone())
        .order_by_asc(disposition_event::Column::Id)
        .limit(CATCH_UP_PAGE)
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e).into())
}

/// Live feeds over WebSocket (`GET /graphql/ws`): disposition changes
/// and recorded activities, published after their deliveries commit.
#[SubscriptionObject]
impl Subscription {
    /// Each time a lead's disposition takes a new value (its first one
    /// included), after the delivery that caused it was committed, in
    /// commit order. With `after` (an event's `cursor`), first every
    /// matching event after it that is stored, then live ones: nothing
    /// missed while disconnected, nothing twice. A subscriber that falls
    /// behind catches up from the database.
    async fn disposition_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<DispositionEventFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<DispositionEvent>>> {
        let feed = feed(ctx)?.clone();
        let reader = ctx.data::<Reader>()?.clone();
        let cond = condition_of(filter.as_ref(), &reader)?;
        let start = match after.as_deref() {
            Some(cursor) => cursor.trim().parse::<i64>().map_err(|_| {
                bad_input(format!(
                    "`after` must be the `cursor` of a DispositionEvent (got {cursor:?})"
                ))
            })?,
            None => feed.published(),
        };
        // Listen before reading the table: an event committed in between is
        // in both, and its id says it was delivered already.
        let mut live = feed.events();
        let guard = feed.subscriber();
        Ok(async_stream::stream! {
            let _guard = guard;
            let mut last = start;
            let mut catching_up = true;
            loop {
                if catching_up {
                    let span = crate::otel::catch_up("dispositionChanged", last);
                    match stored_after(&reader, &cond, last).instrument(span.clone()).await {
                        Ok(rows) => {
                            span.record("leadql.catch_up.events", rows.len() as i64);
                            let full = rows.len() as u64 == CATCH_UP_PAGE;
                            for row in rows {
                                last = row.id;
                                yield Ok(DispositionEvent::from(row));
                            }
                            catching_up = full;
                        }
                        Err(err) => {
                            yield Err(err);
                            return;
                        }
                    }
                    continue;
                }
                match live.recv().await {
                    Ok(published) => {
                        let event = &published.event;
                        if event.id <= last {
                            continue;
                        }
                        if reader.sees_project(event.project_id.as_deref()) && filter.as_ref().is_none_or(|f| f.matches(event)) {
                            last = event.id;
                            // Its lead and activity come from the rows every
                            // subscriber to it shares.
                            let mut out = DispositionEvent::from(event.clone());
                            out.joined.attach(published.rows.clone());
                            yield Ok(out);
                        }
                    }
                    // Fell behind the buffer: the table has everything.
                    Err(RecvError::Lagged(_)) => {
                        feed.caught_up();
                        catching_up = true;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    /// Each activity stored (new, or a newer version) that passes the
    /// filter, after its delivery was committed. Live only: there is no
    /// cursor; a subscriber that falls far behind gets an error and should
    /// subscribe again.
    async fn activity_recorded(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
    ) -> Result<impl Stream<Item = Result<Activity>>> {
        let feed = feed(ctx)?.clone();
        let reader = ctx.data::<Reader>()?.clone();
        let cond = condition_of(filter.as_ref(), &reader)?;
        // A filter the database alone decides (search, variables, …) is
        // asked of it for each batch; any other is checked in memory on
        // the rows every subscriber shares.
        let in_memory = filter.as_ref().is_none_or(ActivityFilter::in_memory);
        let mut live = feed.activities();
        let guard = feed.subscriber();
        Ok(async_stream::stream! {
            let _guard = guard;
            loop {
                match live.recv().await {
                    Ok(batch) => {
                        let rows = if in_memory {
                            live::recorded(&batch, &reader, filter.as_ref()).await
                        } else {
                            asked_of_the_database(&batch, &reader, &cond).await
                        };
                        match rows {
                            Ok(rows) => {
                                for row in rows {
                                    yield Ok(row);
                                }
                            }
                            Err(err) => {
                                yield Err(err);
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        yield Err(async_graphql::Error::new(format!(
                            "this subscription fell behind by {n} batches and missed activities; subscribe again"
                        )));
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }
}

/// The activities of a committed batch that pass a filter only the
/// database can decide, oldest first (one statement for this subscriber).
async fn asked_of_the_database(
    batch: &Arc<Shared>,
    reader: &Reader,
    cond: &Condition,
) -> Result<Vec<Activity>> {
    let rows = reader
        .find::<activity::Entity>()
        .filter(activity::Column::Id.is_in(batch.activity_ids().iter().cloned()))
        .filter(cond.clone())
        .order_by_asc(activity::Column::Timestamp)
        .order_by_asc(activity::Column::Id)
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?;
    Ok(rows
        .iter()
        .map(|row| live::live_activity(row, batch))
        .collect())
}
