//! Live feeds for subscriptions: disposition changes and recorded
//! activities, published only after their transaction committed.
//!
//! Both feeds are logs written by ingest in the transaction that stores
//! what they tell of: `disposition_events` and `activity_events`. One pump
//! task per instance reads them back in id order, so every subscriber sees
//! what is persisted, in commit order (on PostgreSQL the log inserts are
//! serialised by an advisory lock, so ids follow commit order), and can
//! resume after an id. The pump wakes on a local commit, on a PostgreSQL
//! NOTIFY from another instance, and once a second regardless, so a lost
//! notification delays an event but never loses it.
//!
//! Each page of events and each batch of activities is published with a
//! [`Shared`]: the rows its subscribers ask for, read once for all of them.
//!
//! The third feed, callbacks coming due, is not a log but a moment: a
//! callback comes due when the clock passes its `due_order` while it is
//! open. A second pump per instance publishes open callbacks in (moment,
//! id) order up to now, keeping the last one published as its mark, and
//! sleeps until the next moment (or a second, for callbacks stored
//! meanwhile, here or on another instance). Every instance computes the
//! same sequence from the database, so a subscriber can resume after a
//! callback's cursor on any of them, and after a restart.

mod shared;

pub use shared::{Activities, Loaded, Shared};

use crate::clock::Clock;
use crate::store::callbacks::OPEN;
use entity::{activity_event, callback, disposition_event};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

/// PostgreSQL channel: "new disposition events were committed".
pub const EVENTS_CHANNEL: &str = "leadql_events";
/// PostgreSQL channel: "new activity events were committed".
pub const ACTIVITIES_CHANNEL: &str = "leadql_activity_events";
/// Entries read from a log per query.
const PAGE: u64 = 500;
/// How long the rows read for a published page or batch are kept for its
/// subscribers; a subscriber later than that reads them again.
const RETAIN: Duration = Duration::from_secs(5);

/// A disposition event as published to subscribers: the stored row, and
/// the rows its subscribers share with those of the other events read with
/// it.
pub struct Published {
    pub event: disposition_event::Model,
    pub rows: Arc<Shared>,
}

/// A callback that came due, as published to subscribers, with the rows
/// its subscribers share.
pub struct DueCallback {
    pub callback: callback::Model,
    pub rows: Arc<Shared>,
}

/// A place in the `callbackDue` feed: a callback's moment (`due_order`)
/// and id.
pub type DueKey = (i64, String);

/// Handle to this instance's feeds; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    events: broadcast::Sender<Arc<Published>>,
    /// The activities stored by commits (here or on another instance), a
    /// page of `activity_events` at a time.
    activities: broadcast::Sender<Arc<Shared>>,
    wake: Arc<Notify>,
    /// Which logs have news: set by a commit or a NOTIFY, taken by the pump.
    events_waiting: AtomicBool,
    activities_waiting: AtomicBool,
    /// The highest disposition event id published so far.
    published: AtomicI64,
    /// The highest activity event id published so far.
    recorded: AtomicI64,
    /// What was published lately, to let go of the rows read for it once
    /// its subscribers are done (see `RETAIN`).
    recent:
        std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, std::sync::Weak<Shared>)>>,
    /// Callbacks that came due, in (moment, id) order.
    due: broadcast::Sender<Arc<DueCallback>>,
    /// The last callback published as due (at start: now).
    due_mark: std::sync::Mutex<DueKey>,
    clock: Clock,
    subscribers: AtomicU64,
    metrics: crate::telemetry::Metrics,
}

impl Feed {
    /// Start the pump (and on PostgreSQL the NOTIFY listener), publishing
    /// events newer than those already stored.
    pub async fn start(
        db: DatabaseConnection,
        buffer: usize,
        metrics: crate::telemetry::Metrics,
        clock: Clock,
    ) -> Result<Feed, DbErr> {
        let buffer = buffer.max(1);
        let newest_event: Option<i64> = disposition_event::Entity::find()
            .select_only()
            .column_as(disposition_event::Column::Id.max(), "max")
            .into_tuple()
            .one(&db)
            .await?
            .flatten();
        let newest_activity: Option<i64> = activity_event::Entity::find()
            .select_only()
            .column_as(activity_event::Column::Id.max(), "max")
            .into_tuple()
            .one(&db)
            .await?
            .flatten();
        let feed = Feed {
            inner: Arc::new(Inner {
                db: db.clone(),
                events: broadcast::channel(buffer).0,
                activities: broadcast::channel((buffer / 8).max(1)).0,
                wake: Arc::new(Notify::new()),
                events_waiting: AtomicBool::new(false),
                activities_waiting: AtomicBool::new(false),
                published: AtomicI64::new(newest_event.unwrap_or(0)),
                recorded: AtomicI64::new(newest_activity.unwrap_or(0)),
                recent: Default::default(),
                due: broadcast::channel(buffer).0,
                due_mark: std::sync::Mutex::new((clock.now_ms(), String::new())),
                clock,
                subscribers: AtomicU64::new(0),
                metrics,
            }),
        };
        tokio::spawn(pump(Arc::downgrade(&feed.inner), feed.inner.wake.clone()));
        tokio::spawn(due_pump(
            Arc::downgrade(&feed.inner),
            feed.inner.clock.clone(),
        ));
        if db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(listen(Arc::downgrade(&feed.inner)));
        }
        Ok(feed)
    }

    /// The highest event id published: a `dispositionChanged` without a
    /// cursor starts after it.
    pub fn published(&self) -> i64 {
        self.inner.published.load(Ordering::SeqCst)
    }

    /// The highest activity event id published: an `activityRecorded`
    /// without a cursor starts after it.
    pub fn recorded(&self) -> i64 {
        self.inner.recorded.load(Ordering::SeqCst)
    }

    /// The last callback published as due: a `callbackDue` without a
    /// cursor starts after it.
    pub fn due_mark(&self) -> DueKey {
        self.inner.due_mark()
    }

    pub fn due(&self) -> broadcast::Receiver<Arc<DueCallback>> {
        self.inner.due.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<Arc<Published>> {
        self.inner.events.subscribe()
    }

    pub fn activities(&self) -> broadcast::Receiver<Arc<Shared>> {
        self.inner.activities.subscribe()
    }

    /// A batch committed here with disposition events and/or stored
    /// activities: have the pump publish them.
    pub fn committed(&self, events: bool, activities: bool) {
        self.inner.wake_for(events, activities);
    }

    /// Count an open subscription for as long as the guard lives.
    pub fn subscriber(&self) -> SubscriberGuard {
        self.inner.subscribers.fetch_add(1, Ordering::SeqCst);
        self.inner
            .metrics
            .record(|| metrics::gauge!(crate::telemetry::SUBSCRIPTIONS).increment(1.0));
        SubscriberGuard {
            inner: self.inner.clone(),
        }
    }

    /// A subscriber fell behind the buffer and reads from the table.
    pub fn caught_up(&self) {
        self.inner
            .metrics
            .record(|| metrics::counter!(crate::telemetry::CATCH_UPS).increment(1));
    }

    pub fn subscribers(&self) -> u64 {
        self.inner.subscribers.load(Ordering::SeqCst)
    }
}

impl Inner {
    fn due_mark(&self) -> DueKey {
        self.due_mark
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wake_for(&self, events: bool, activities: bool) {
        if events {
            self.events_waiting.store(true, Ordering::SeqCst);
        }
        if activities {
            self.activities_waiting.store(true, Ordering::SeqCst);
        }
        if events || activities {
            self.wake.notify_one();
        }
    }

    /// Remember `shared` as published now, and let go of the rows of
    /// what was published more than `RETAIN` ago.
    fn retain(&self, shared: &Arc<Shared>) {
        let now = std::time::Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push_back((now, Arc::downgrade(shared)));
        Self::expire(&mut recent, now);
    }

    /// Let go of the rows of what was published more than `RETAIN` ago.
    fn sweep(&self) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        Self::expire(&mut recent, std::time::Instant::now());
    }

    fn expire(
        recent: &mut std::collections::VecDeque<(std::time::Instant, std::sync::Weak<Shared>)>,
        now: std::time::Instant,
    ) {
        while recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RETAIN)
        {
            if let Some(shared) = recent.pop_front().and_then(|(_, s)| s.upgrade()) {
                shared.release();
            }
        }
    }
}

/// Decrements the open-subscription count when dropped.
pub struct SubscriberGuard {
    inner: Arc<Inner>,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.inner.subscribers.fetch_sub(1, Ordering::SeqCst);
        self.inner
            .metrics
            .record(|| metrics::gauge!(crate::telemetry::SUBSCRIPTIONS).decrement(1.0));
    }
}

/// Publish what the logs hold in id order, from the highest published
/// on.
async fn pump(inner: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        // Not holding the feed while waiting, so it can be dropped.
        let woken = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        let Some(feed) = inner.upgrade() else { return };
        feed.sweep();
        let idle = woken.is_err();
        if feed.events_waiting.swap(false, Ordering::SeqCst) || idle {
            publish_events(&feed).await;
        }
        if feed.activities_waiting.swap(false, Ordering::SeqCst) || idle {
            publish_activities(&feed).await;
        }
    }
}

/// Publish the disposition events after the highest published.
async fn publish_events(feed: &Inner) {
    loop {
        let last = feed.published.load(Ordering::SeqCst);
        let Some(rows) = page_after::<disposition_event::Entity>(
            feed,
            disposition_event::Column::Id,
            last,
            &feed.events_waiting,
        )
        .await
        else {
            return;
        };
        let full = rows.len() as u64 == PAGE;
        let shared = Shared::for_events(feed.db.clone(), &rows);
        feed.retain(&shared);
        for row in rows {
            feed.published.store(row.id, Ordering::SeqCst);
            let _ = feed.events.send(Arc::new(Published {
                event: row,
                rows: shared.clone(),
            }));
        }
        if !full {
            return;
        }
    }
}

/// Publish the activity events after the highest published, a page at a
/// time.
async fn publish_activities(feed: &Inner) {
    loop {
        let last = feed.recorded.load(Ordering::SeqCst);
        let Some(rows) = page_after::<activity_event::Entity>(
            feed,
            activity_event::Column::Id,
            last,
            &feed.activities_waiting,
        )
        .await
        else {
            return;
        };
        let Some(newest) = rows.last().map(|r| r.id) else {
            return;
        };
        let full = rows.len() as u64 == PAGE;
        let shared = Shared::for_activities(feed.db.clone(), &rows);
        feed.retain(&shared);
        feed.recorded.store(newest, Ordering::SeqCst);
        let _ = feed.activities.send(shared);
        if !full {
            return;
        }
    }
}

/// A page of a feed's log after entry `last`, in id order. None when the
/// read fails: the log is marked `waiting`, to be read again at the next
/// wake (within a second).
async fn page_after<E: EntityTrait>(
    feed: &Inner,
    id: E::Column,
    last: i64,
    waiting: &AtomicBool,
) -> Option<Vec<E::Model>> {
    let rows = E::find()
        .filter(id.gt(last))
        .order_by_asc(id)
        .limit(PAGE)
        .all(&feed.db)
        .await;
    match rows {
        Ok(rows) => Some(rows),
        Err(err) => {
            tracing::warn!(error = %err, table = E::default().table_name(), "reading a feed's new entries failed; retrying");
            waiting.store(true, Ordering::SeqCst);
            None
        }
    }
}

/// Publish callbacks as they come due: whatever is due after the mark,
/// then sleep until the next moment, or a second at most (a callback
/// stored meanwhile may be due sooner).
async fn due_pump(inner: std::sync::Weak<Inner>, clock: Clock) {
    loop {
        let Some(feed) = inner.upgrade() else { return };
        let next = publish_due(&feed).await;
        // Not holding the feed while waiting, so it can be dropped.
        drop(feed);
        let until_next = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = until_next => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Callbacks after `key` in the feed's order: (moment, id) beyond it.
pub fn beyond(key: &DueKey) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(callback::Column::DueOrder.gt(key.0))
        .add(
            sea_orm::Condition::all()
                .add(callback::Column::DueOrder.eq(key.0))
                .add(callback::Column::Id.gt(key.1.as_str())),
        )
}

/// `select`'s open callbacks after `key`, in the feed's order.
pub fn open_beyond(
    select: sea_orm::Select<callback::Entity>,
    key: &DueKey,
) -> sea_orm::Select<callback::Entity> {
    select
        .filter(callback::Column::State.eq(OPEN))
        .filter(beyond(key))
        .order_by_asc(callback::Column::DueOrder)
        .order_by_asc(callback::Column::Id)
}

/// Publish the open callbacks after the mark whose moment has come, a
/// page at a time; the next moment after them, if any (None also when the
/// read failed: it is tried again within a second).
async fn publish_due(feed: &Inner) -> Option<i64> {
    loop {
        let now = feed.clock.now_ms();
        let due = match open_beyond(callback::Entity::find(), &feed.due_mark())
            .filter(callback::Column::DueOrder.lte(now))
            .limit(PAGE)
            .all(&feed.db)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "reading the callbacks that came due failed; retrying");
                return None;
            }
        };
        let full = due.len() as u64 == PAGE;
        if !due.is_empty() {
            let shared = Shared::for_callbacks(feed.db.clone(), &due);
            feed.retain(&shared);
            for callback in due {
                *feed.due_mark.lock().unwrap_or_else(|e| e.into_inner()) =
                    (callback.due_order, callback.id.clone());
                let _ = feed.due.send(Arc::new(DueCallback {
                    callback,
                    rows: shared.clone(),
                }));
            }
        }
        if full {
            continue;
        }
        return match open_beyond(callback::Entity::find(), &feed.due_mark())
            .select_only()
            .column(callback::Column::DueOrder)
            .into_tuple::<i64>()
            .one(&feed.db)
            .await
        {
            Ok(next) => next.filter(|at| *at != i64::MAX),
            Err(err) => {
                tracing::warn!(error = %err, "reading the next callback's moment failed; retrying");
                None
            }
        };
    }
}

/// PostgreSQL: LISTEN for other instances' commits; reconnect when the
/// connection drops, then read whatever was missed from the table.
async fn listen(inner: std::sync::Weak<Inner>) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(feed) = inner.upgrade() else { return };
        let pool = feed.db.get_postgres_connection_pool().clone();
        drop(feed);
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen_all([EVENTS_CHANNEL, ACTIVITIES_CHANNEL]).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for other instances' events; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        // Anything committed while not listening is in the logs.
        if let Some(feed) = inner.upgrade() {
            feed.wake_for(true, true);
        }
        loop {
            // `try_recv` reports a lost connection instead of reconnecting
            // silently, so the gap is filled from the table above.
            let received = listener.try_recv().await;
            let Some(feed) = inner.upgrade() else { return };
            match received {
                Ok(Some(n)) => {
                    let events = n.channel() == EVENTS_CHANNEL;
                    feed.wake_for(events, !events);
                }
                Ok(None) => {
                    tracing::warn!("the LISTEN connection dropped; reconnecting");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}
