//! Live feeds for subscriptions: disposition changes and recorded
//! activities, published only after their transaction committed.
//!
//! Disposition events are read back from the `disposition_events` table in
//! id order by one pump task per instance, so every subscriber sees what is
//! persisted, in commit order (on PostgreSQL the event inserts are
//! serialised by an advisory lock, so ids follow commit order). The pump
//! wakes on a local commit, on a PostgreSQL NOTIFY from another instance,
//! and once a second regardless, so a lost notification delays an event
//! but never loses it.
//!
//! Recorded activities are live only: the ids of a committed batch go to
//! local subscribers at once and to other instances by NOTIFY.
//!
//! Each page of events and each batch of activities is published with a
//! [`Shared`]: the rows its subscribers ask for, read once for all of them.

mod shared;

pub use shared::{Activities, Loaded, Shared};

use entity::disposition_event;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

/// PostgreSQL channel: "new disposition events were committed".
pub const EVENTS_CHANNEL: &str = "leadql_events";
/// PostgreSQL channel: `{"from": instance, "ids": [activity ids]}`.
pub const ACTIVITIES_CHANNEL: &str = "leadql_activities";
/// Events read from the table per query.
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

/// Handle to this instance's feeds; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// Identifies this instance in NOTIFY payloads (its own are skipped).
    instance: String,
    events: broadcast::Sender<Arc<Published>>,
    /// The activities of each commit (here or on another instance).
    activities: broadcast::Sender<Arc<Shared>>,
    wake: Arc<Notify>,
    /// The highest event id published so far.
    published: AtomicI64,
    /// What was published lately, to let go of the rows read for it once
    /// its subscribers are done (see `RETAIN`).
    recent:
        std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, std::sync::Weak<Shared>)>>,
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
    ) -> Result<Feed, DbErr> {
        let buffer = buffer.max(1);
        let newest: Option<i64> = disposition_event::Entity::find()
            .select_only()
            .column_as(disposition_event::Column::Id.max(), "max")
            .into_tuple()
            .one(&db)
            .await?
            .flatten();
        let feed = Feed {
            inner: Arc::new(Inner {
                db: db.clone(),
                instance: format!("{:016x}", rand::random::<u64>()),
                events: broadcast::channel(buffer).0,
                activities: broadcast::channel((buffer / 8).max(1)).0,
                wake: Arc::new(Notify::new()),
                published: AtomicI64::new(newest.unwrap_or(0)),
                recent: Default::default(),
                subscribers: AtomicU64::new(0),
                metrics,
            }),
        };
        tokio::spawn(pump(Arc::downgrade(&feed.inner), feed.inner.wake.clone()));
        if db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(listen(Arc::downgrade(&feed.inner)));
        }
        Ok(feed)
    }

    /// The highest event id published: a subscription without a cursor
    /// starts after it.
    pub fn published(&self) -> i64 {
        self.inner.published.load(Ordering::SeqCst)
    }

    pub fn events(&self) -> broadcast::Receiver<Arc<Published>> {
        self.inner.events.subscribe()
    }

    pub fn activities(&self) -> broadcast::Receiver<Arc<Shared>> {
        self.inner.activities.subscribe()
    }

    /// A batch committed here: read its events, tell local subscribers of
    /// its activities.
    pub fn committed(&self, events: bool, activity_ids: Vec<String>) {
        if events {
            self.inner.wake.notify_one();
        }
        if !activity_ids.is_empty() {
            let shared = Shared::for_activities(self.inner.db.clone(), activity_ids);
            self.inner.retain(&shared);
            let _ = self.inner.activities.send(shared);
        }
    }

    /// Statements that tell other instances about a batch, to run in its
    /// transaction (PostgreSQL delivers NOTIFY at commit).
    pub fn notifications(&self, events: bool, activity_ids: &[String]) -> Vec<Statement> {
        let mut out = Vec::new();
        if events {
            out.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, '')",
                [EVENTS_CHANNEL.into()],
            ));
        }
        // NOTIFY payloads must stay under 8000 bytes.
        let mut chunk: Vec<&str> = Vec::new();
        let mut size = 0;
        let flush = |chunk: &mut Vec<&str>, out: &mut Vec<Statement>| {
            if chunk.is_empty() {
                return;
            }
            let payload =
                serde_json::json!({ "from": self.inner.instance, "ids": chunk }).to_string();
            out.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [ACTIVITIES_CHANNEL.into(), payload.into()],
            ));
            chunk.clear();
        };
        for id in activity_ids {
            if id.len() > 4000 {
                // Cannot fit a NOTIFY payload (8000 bytes); this instance's
                // own subscribers still see it.
                tracing::warn!(
                    length = id.len(),
                    "activity id too long to announce to other instances"
                );
                continue;
            }
            if size + id.len() > 6000 {
                flush(&mut chunk, &mut out);
                size = 0;
            }
            size += id.len() + 4;
            chunk.push(id);
        }
        flush(&mut chunk, &mut out);
        out
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

/// Publish stored events in id order, from the highest published on.
async fn pump(inner: std::sync::Weak<Inner>, wake: Arc<Notify>) {
    loop {
        // Not holding the feed while waiting, so it can be dropped.
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        let Some(feed) = inner.upgrade() else { return };
        feed.sweep();
        let db = feed.db.clone();
        loop {
            let last = feed.published.load(Ordering::SeqCst);
            let rows = disposition_event::Entity::find()
                .filter(disposition_event::Column::Id.gt(last))
                .order_by_asc(disposition_event::Column::Id)
                .limit(PAGE)
                .all(&db)
                .await;
            match rows {
                Ok(rows) => {
                    let full = rows.len() as u64 == PAGE;
                    let shared = Shared::for_events(db.clone(), &rows);
                    feed.retain(&shared);
                    for row in rows {
                        feed.published.store(row.id, Ordering::SeqCst);
                        let _ = feed.events.send(Arc::new(Published {
                            event: row,
                            rows: shared.clone(),
                        }));
                    }
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading new disposition events failed; retrying");
                    break;
                }
            }
        }
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
        // Anything committed while not listening is in the table.
        if let Some(feed) = inner.upgrade() {
            feed.wake.notify_one();
        }
        loop {
            // `try_recv` reports a lost connection instead of reconnecting
            // silently, so the gap is filled from the table above.
            let received = listener.try_recv().await;
            let Some(feed) = inner.upgrade() else { return };
            match received {
                Ok(Some(n)) if n.channel() == EVENTS_CHANNEL => feed.wake.notify_one(),
                Ok(Some(n)) => {
                    #[derive(serde::Deserialize)]
                    struct Payload {
                        from: String,
                        ids: Vec<String>,
                    }
                    match serde_json::from_str::<Payload>(n.payload()) {
                        Ok(p) if p.from != feed.instance => {
                            let shared = Shared::for_activities(feed.db.clone(), p.ids);
                            feed.retain(&shared);
                            let _ = feed.activities.send(shared);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "unreadable activity notification")
                        }
                    }
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
