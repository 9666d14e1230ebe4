//! The root subscription fields: live feeds over WebSocket (see `ws.rs`).

use super::engine::filter::condition_of;
use super::resources::activity::{Activity, ActivityFilter};
use super::resources::callback::{Callback, CallbackFilter};
use super::resources::disposition_event::{DispositionEvent, DispositionEventFilter};
use super::resources::live;
use crate::error::bad_input;
use crate::error::ApiError;
use crate::feed::{beyond, open_beyond, DueKey, Feed, Shared};
use crate::store::read::Reader;
use async_graphql::{Context, Result, Subscription as SubscriptionObject};
use entity::{activity, activity_event, callback, disposition_event};
use futures::Stream;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;
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

/// A feed's `after` argument: the entry id it names, or a clear error.
fn cursor(after: Option<&str>, what: &str) -> Result<Option<i64>> {
    after
        .map(|cursor| {
            cursor
                .trim()
                .parse::<i64>()
                .map_err(|_| bad_input(format!("`after` must be {what} (got {cursor:?})")))
        })
        .transpose()
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

/// A `callbackDue` cursor: a callback's moment and id.
fn due_cursor(after: Option<&str>) -> Result<Option<DueKey>> {
    after
        .map(|cursor| {
            cursor
                .trim()
                .split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| {
                    bad_input(format!(
                        "`after` must be the `cursor` of a Callback (got {cursor:?})"
                    ))
                })
        })
        .transpose()
}

/// Open callbacks in the `callbackDue` order after `last` and up to
/// `upto` (what the feed has published) that `reader` sees and `cond`
/// passes, one page.
async fn due_after(
    reader: &Reader,
    cond: &Condition,
    last: &DueKey,
    upto: &DueKey,
) -> Result<Vec<callback::Model>> {
    open_beyond(reader.find::<callback::Entity>(), last)
        .filter(beyond(upto).not())
        .filter(cond.clone())
        .limit(CATCH_UP_PAGE)
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e).into())
}

/// Whether callback `id` passes `filter` now, as the database decides.
async fn still_matches(reader: &Reader, filter: Option<&CallbackFilter>, id: &str) -> Result<bool> {
    let cond = condition_of(filter, reader)?;
    Ok(reader
        .find::<callback::Entity>()
        .filter(callback::Column::Id.eq(id))
        .filter(cond)
        .one(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?
        .is_some())
}

/// Live feeds over WebSocket (`GET /graphql/ws`): disposition changes
/// and recorded activities, published after their deliveries commit, and
/// callbacks as they come due.
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
        let start = match cursor(after.as_deref(), "the `cursor` of a DispositionEvent")? {
            Some(cursor) => cursor,
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
    /// filter, after its delivery was committed, in commit order, with its
    /// `recordedCursor`. With `after` (an Activity's `recordedCursor`),
    /// first every matching activity stored after it, then live ones:
    /// nothing missed while disconnected, nothing twice. Activities are
    /// sent as they are when sent: one stored twice while a client was away
    /// comes twice, both times as its newest version. A subscriber that
    /// falls behind catches up from the database.
    async fn activity_recorded(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<Activity>>> {
        let feed = feed(ctx)?.clone();
        let reader = ctx.data::<Reader>()?.clone();
        let cond = condition_of(filter.as_ref(), &reader)?;
        // A filter the database alone decides (search, variables, …) is
        // asked of it for each page; any other is checked in memory on
        // the rows every subscriber shares.
        let in_memory = filter.as_ref().is_none_or(ActivityFilter::in_memory);
        let start = match cursor(after.as_deref(), "the `recordedCursor` of an Activity")? {
            Some(cursor) => cursor,
            None => feed.recorded(),
        };
        // Listen before reading the table: an activity committed in
        // between is in both, and its entry id says it was sent already.
        let mut live = feed.activities();
        let guard = feed.subscriber();
        Ok(async_stream::stream! {
            let _guard = guard;
            let mut last = start;
            let mut catching_up = after.is_some();
            loop {
                if catching_up {
                    let span = crate::otel::catch_up("activityRecorded", last);
                    match recorded_after(&reader, &cond, last).instrument(span.clone()).await {
                        Ok(page) => {
                            span.record("leadql.catch_up.events", page.activities.len() as i64);
                            last = page.last;
                            for (_, activity) in page.activities {
                                yield Ok(activity);
                            }
                            catching_up = page.full;
                        }
                        Err(err) => {
                            yield Err(err);
                            return;
                        }
                    }
                    continue;
                }
                match live.recv().await {
                    Ok(page) => {
                        let Some(&(newest, _)) = page.entries().last() else { continue };
                        if newest <= last {
                            continue;
                        }
                        let rows = if in_memory {
                            live::recorded(&page, &reader, filter.as_ref()).await
                        } else {
                            asked_of_the_database(&page, &reader, &cond).await
                        };
                        match rows {
                            Ok(rows) => {
                                for (entry, activity) in rows {
                                    if entry > last {
                                        yield Ok(activity);
                                    }
                                }
                                last = newest;
                            }
                            Err(err) => {
                                yield Err(err);
                                return;
                            }
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

    /// Each callback when its moment comes while it is still to be made
    /// (neither DONE nor SUPERSEDED), once, in moment order (then id),
    /// with its `cursor`. With `after` (a Callback's `cursor`), first every
    /// matching callback that came due after it and is still open (one
    /// that came due while the client, or the server, was away included),
    /// then live ones. Every instance sends the same sequence, so a client
    /// may resume on any. A callback stored after its moment had passed
    /// (and after this feed's place) is not sent: it is listed by
    /// `callbacks(filter: {status: [DUE]})`.
    async fn callback_due(
        &self,
        ctx: &Context<'_>,
        filter: Option<CallbackFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<Callback>>> {
        let feed = feed(ctx)?.clone();
        let reader = ctx.data::<Reader>()?.clone();
        // Checked now, so a bad filter is refused at once; made again at
        // each use, since `status` depends on the time.
        condition_of(filter.as_ref(), &reader)?;
        let in_memory = filter.as_ref().is_none_or(CallbackFilter::in_memory);
        let resume = due_cursor(after.as_deref())?;
        // Listen before reading the mark: a callback published in between
        // is in both, and its key says it was sent already.
        let mut live = feed.due();
        let start = resume.clone().unwrap_or_else(|| feed.due_mark());
        let guard = feed.subscriber();
        Ok(async_stream::stream! {
            let _guard = guard;
            let mut last = start;
            let mut catching_up = resume.is_some();
            loop {
                if catching_up {
                    let upto = feed.due_mark();
                    let rows = match condition_of(filter.as_ref(), &reader) {
                        Ok(cond) => due_after(&reader, &cond, &last, &upto).await,
                        Err(err) => Err(err),
                    };
                    match rows {
                        Ok(rows) => {
                            let full = rows.len() as u64 == CATCH_UP_PAGE;
                            for row in rows {
                                last = (row.due_order, row.id.clone());
                                yield Ok(Callback::from(row));
                            }
                            if !full {
                                // Everything up to the feed's mark is sent.
                                last = last.max(upto);
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
                    Ok(due) => {
                        let row = &due.callback;
                        let key = (row.due_order, row.id.clone());
                        if key <= last {
                            continue;
                        }
                        last = key;
                        if !reader.sees_project(row.project_id.as_deref()) {
                            continue;
                        }
                        let passes = if in_memory {
                            Ok(filter.as_ref().is_none_or(|f| f.matches(row)))
                        } else {
                            still_matches(&reader, filter.as_ref(), &row.id).await
                        };
                        let passes = match passes {
                            Ok(passes) => passes,
                            Err(err) => {
                                yield Err(err);
                                return;
                            }
                        };
                        if passes {
                            let mut out = Callback::from(row.clone());
                            out.joined.attach(due.rows.clone());
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
}

/// A page of the `activityRecorded` feed read from the table.
struct RecordedPage {
    /// The matching activities, in feed order, with their entry ids.
    activities: Vec<(i64, Activity)>,
    /// The last entry read (matching or not).
    last: i64,
    /// Whether there may be more after it.
    full: bool,
}

/// The activities stored after entry `last` that `reader` sees and `cond`
/// passes, one page of entries (two statements).
async fn recorded_after(reader: &Reader, cond: &Condition, last: i64) -> Result<RecordedPage> {
    let entries = activity_event::Entity::find()
        .filter(activity_event::Column::Id.gt(last))
        .order_by_asc(activity_event::Column::Id)
        .limit(CATCH_UP_PAGE)
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?;
    let Some(newest) = entries.last().map(|e| e.id) else {
        return Ok(RecordedPage {
            activities: Vec::new(),
            last,
            full: false,
        });
    };
    let entries: Vec<(i64, String)> = entries.into_iter().map(|e| (e.id, e.activity_id)).collect();
    Ok(RecordedPage {
        activities: matching(reader, cond, &entries, None).await?,
        last: newest,
        full: entries.len() as u64 == CATCH_UP_PAGE,
    })
}

/// The activities of a published page that pass a filter only the
/// database can decide, in feed order (one statement for this subscriber).
async fn asked_of_the_database(
    page: &Arc<Shared>,
    reader: &Reader,
    cond: &Condition,
) -> Result<Vec<(i64, Activity)>> {
    matching(reader, cond, page.entries(), Some(page)).await
}

/// The activities of feed `entries` (entry id, activity id) that `reader`
/// sees and `cond` passes, in feed order, carrying `shared` when they
/// arrived live (one statement).
async fn matching(
    reader: &Reader,
    cond: &Condition,
    entries: &[(i64, String)],
    shared: Option<&Arc<Shared>>,
) -> Result<Vec<(i64, Activity)>> {
    let mut ids: Vec<&str> = entries.iter().map(|(_, id)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: HashMap<String, activity::Model> = reader
        .find::<activity::Entity>()
        .filter(activity::Column::Id.is_in(ids))
        .filter(cond.clone())
        .all(reader.db())
        .await
        .map_err(|e| ApiError::database(&e))?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    Ok(entries
        .iter()
        .filter_map(|(entry, id)| Some(live::recorded_activity(rows.get(id)?, *entry, shared)))
        .collect())
}
