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
        let chunk = Condition::all()
            .add(C::Id.gt(after))
            .add(C::Id.lte(upto))
            .add(C::ReceivedAt.lt(before))
            .add(C::PrunedAt.is_null());
        let (pruned, freed) = match db.get_database_backend() {
            DbBackend::Sqlite => rewrite_without_bodies(db, chunk, now).await?,
            _ => clear_bodies(db, chunk, now).await?,
        };
        count += pruned;
        bytes += freed;
        after = upto;
        if old < rows.len() || rows.len() < CHUNK as usize {
            break;
        }
    }
    Ok((count, bytes, after))
}

/// PostgreSQL: empty the bodies in place. The old row versions (and their
/// TOAST chunks) are vacuumed and their space reused by new rows.
async fn clear_bodies(
    db: &DatabaseConnection,
    chunk: Condition,
    now: i64,
) -> Result<(u64, u64), DbErr> {
    use delivery::Column as C;
    let freed: Option<i64> = delivery::Entity::find()
        .select_only()
        .column_as(Expr::cust("COALESCE(SUM(octet_length(body)), 0)"), "bytes")
        .filter(chunk.clone())
        .into_tuple()
        .one(db)
        .await?;
    let pruned = delivery::Entity::update_many()
        .col_expr(C::Body, Expr::value(""))
        .col_expr(C::PrunedAt, Expr::value(now))
        .filter(chunk)
        .exec(db)
        .await?
        .rows_affected;
    Ok((pruned, u64::try_from(freed.unwrap_or(0)).unwrap_or(0)))
}

/// SQLite: delete the rows and insert them again, same ids, without their
/// bodies, in one transaction. An UPDATE that shrinks a row leaves its page
/// as empty as it makes it (SQLite merges pages only when cells are
/// deleted), and new deliveries are appended at the end of the table, so
/// that space would never be used again: measured at 100,000 leads, 804 of
/// the log's 862 MB stayed as unused space inside its pages after such an
/// update, against the log shrinking to 69 MB (the rest going to the free
/// list, which new rows take from) this way.
async fn rewrite_without_bodies(
    db: &DatabaseConnection,
    chunk: Condition,
    now: i64,
) -> Result<(u64, u64), DbErr> {
    use delivery::Column as C;
    use sea_orm::{ConnectionTrait, QueryTrait, TransactionTrait};
    let txn = db.begin().await?;
    let mut delete = delivery::Entity::delete_many().filter(chunk).into_query();
    delete.returning(sea_orm::sea_query::ReturningClause::Exprs(
        [
            C::Id,
            C::BodyHash,
            C::Kind,
            C::SourceId,
            C::LeadId,
            C::Timestamp,
            C::Outcome,
            C::ReceivedAt,
            C::DuplicateCount,
        ]
        .into_iter()
        .map(Expr::col)
        .chain([Expr::cust("length(CAST(body AS BLOB))")])
        .collect(),
    ));
    let deleted = txn.query_all(&delete).await?;
    let mut bytes = 0_u64;
    let mut kept = Vec::with_capacity(deleted.len());
    for row in &deleted {
        let size: i64 = row.try_get_by_index(9)?;
        bytes += u64::try_from(size).unwrap_or(0);
        kept.push(delivery::ActiveModel::from(delivery::Model {
            id: row.try_get_by_index(0)?,
            body_hash: row.try_get_by_index(1)?,
            kind: row.try_get_by_index(2)?,
            source_id: row.try_get_by_index(3)?,
            lead_id: row.try_get_by_index(4)?,
            timestamp: row.try_get_by_index(5)?,
            outcome: row.try_get_by_index(6)?,
            body: String::new(),
            received_at: row.try_get_by_index(7)?,
            duplicate_count: row.try_get_by_index(8)?,
            pruned_at: Some(now),
        }));
    }
    let pruned = kept.len() as u64;
    // At most CHUNK rows of 11 values: within SQLite's 32,766 variables.
    if !kept.is_empty() {
        delivery::Entity::insert_many(kept).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok((pruned, bytes))
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
