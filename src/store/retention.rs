//! Retention: removing the raw bodies of old accepted deliveries, and old
//! rejected deliveries.
//!
//! A pruned delivery keeps its row (hash, ids, timestamp, outcome) with an
//! empty body and `pruned_at` set, so a repeat of the body is still a
//! duplicate and every projection stays as it is. What is lost is the
//! ability to rebuild from that body: `reproject` then keeps the leads it
//! touched as they are (see [`super::reproject`]).

use entity::{delivery, rejected_delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::time::Duration;

/// Deliveries looked at, and pruned, per statement: each chunk is one short
/// write, so ingest (SQLite's one writer) waits for a chunk at most.
const CHUNK: u64 = 1000;

/// How long raw bodies are kept (None: for ever).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Bodies of accepted deliveries received longer ago are removed.
    pub deliveries: Option<Duration>,
    /// Rejected deliveries received longer ago are deleted.
    pub rejected: Option<Duration>,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.deliveries.is_none() && self.rejected.is_none()
    }
}

/// What one prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Accepted deliveries whose bodies were removed.
    pub deliveries: u64,
    /// Bytes of those bodies.
    pub bytes: u64,
    /// Rejected deliveries deleted.
    pub rejected: u64,
    /// The last delivery id looked at: the next prune may start after it.
    pub walked_to: i64,
}

/// Prune by `retention`, judged against `now` (epoch ms), walking the
/// delivery log from after id `start` (0: from the beginning).
pub async fn prune(
    db: &DatabaseConnection,
    retention: Retention,
    now: i64,
    start: i64,
) -> Result<PruneSummary, DbErr> {
    let cutoff =
        |age: Duration| now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    let mut summary = PruneSummary {
        walked_to: start,
        ..Default::default()
    };
    if let Some(age) = retention.deliveries {
        let (count, bytes, walked_to) = prune_bodies(db, cutoff(age), now, start).await?;
        summary.deliveries = count;
        summary.bytes = bytes;
        summary.walked_to = walked_to;
    }
    if let Some(age) = retention.rejected {
        summary.rejected = rejected_delivery::Entity::delete_many()
            .filter(rejected_delivery::Column::ReceivedAt.lt(cutoff(age)))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(summary)
}

/// Remove the bodies of accepted deliveries received before `before`
/// (epoch ms), marking them pruned at `now`. The log is walked in arrival
/// (id) order and the walk ends at the first delivery received at or after
/// `before`; a delivery committed out of order by another instance a
/// moment earlier waits for the next prune. Returns the count, their
/// bytes, and the last id the walk passed.
async fn prune_bodies(
    db: &DatabaseConnection,
    before: i64,
    now: i64,
    start: i64,
) -> Result<(u64, u64, i64), DbErr> {
    use delivery::Column as C;
    let size = match db.get_database_backend() {
        DbBackend::Postgres => "COALESCE(SUM(octet_length(body)), 0)",
        _ => "COALESCE(SUM(length(CAST(body AS BLOB))), 0)",
    };
    let (mut count, mut bytes, mut after) = (0_u64, 0_u64, start);
    loop {
        let rows: Vec<(i64, i64)> = delivery::Entity::find()
            .select_only()
            .column(C::Id)
            .column(C::ReceivedAt)
            .filter(C::Id.gt(after))
            .order_by_asc(C::Id)
            .limit(CHUNK)
            .into_tuple()
            .all(db)
            .await?;
        let old = rows.iter().take_while(|(_, at)| *at < before).count();
        let Some(&(upto, _)) = old.checked_sub(1).and_then(|last| rows.get(last)) else {
            break;
        };
        let chunk = || {
            Condition::all()
                .add(C::Id.gt(after))
                .add(C::Id.lte(upto))
                .add(C::ReceivedAt.lt(before))
                .add(C::PrunedAt.is_null())
        };
        let freed: Option<i64> = delivery::Entity::find()
            .select_only()
            .column_as(Expr::cust(size), "bytes")
            .filter(chunk())
            .into_tuple()
            .one(db)
            .await?;
        let pruned = delivery::Entity::update_many()
            .col_expr(C::Body, Expr::value(""))
            .col_expr(C::PrunedAt, Expr::value(now))
            .filter(chunk())
            .exec(db)
            .await?
            .rows_affected;
        count += pruned;
        bytes += u64::try_from(freed.unwrap_or(0)).unwrap_or(0);
        after = upto;
        if old < rows.len() || rows.len() < CHUNK as usize {
            break;
        }
    }
    Ok((count, bytes, after))
}

/// Under `serve`: prune by `retention` now and then every `every`, until
/// the process ends. Each pass continues the walk where the last one
/// ended, so the pruned part of the log is not read again.
pub fn spawn_retention(db: &DatabaseConnection, retention: Retention, every: Duration) {
    if retention.is_off() {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut walked_to = 0;
        loop {
            tick.tick().await;
            match prune(&db, retention, super::now_ms(), walked_to).await {
                Ok(summary) => {
                    walked_to = summary.walked_to;
                    if summary.deliveries > 0 || summary.rejected > 0 {
                        tracing::info!(
                            deliveries = summary.deliveries,
                            bytes = summary.bytes,
                            rejected = summary.rejected,
                            "retention: pruned old delivery bodies"
                        );
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "retention: prune failed; trying again later")
                }
            }
        }
    });
}
