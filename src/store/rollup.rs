//! The activity rollup: current activities counted per project, period
//! (each UTC hour, and each UTC day), analysis disposition and disposition
//! type (`activity_rollups`).
//!
//! Ingest keeps it in the batch's transaction: each activity a batch
//! stores adds one to its key and, when it replaces an older version,
//! takes one from the old version's key. So duplicates and stale versions
//! change nothing, a newer version moves its count, and the order of
//! delivery does not matter. `reproject`, and the first start after the
//! migration, build it from the activities instead ([`rebuild`]).

use super::projection::LeadFacts;
use entity::{activity, activity_rollup};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QuerySelect, QueryTrait};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// An hour in epoch milliseconds.
pub const HOUR: i64 = 3_600_000;
/// A day in epoch milliseconds.
pub const DAY: i64 = 24 * HOUR;
/// The periods counted: each activity is counted in its hour and its day.
pub const SPANS: [i64; 2] = [HOUR, DAY];

/// What an activity is counted under.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub project_id: Option<String>,
    /// The period's length (one of [`SPANS`]).
    pub span: i64,
    /// Its start: `timestamp / span * span`, as SQL computes it.
    pub start: i64,
    pub disposition: Option<String>,
    pub disposition_type: Option<String>,
}

impl Key {
    /// The keys an activity is counted under, one per span.
    pub fn of(f: &LeadFacts) -> impl Iterator<Item = Key> + '_ {
        SPANS.into_iter().map(|span| Key {
            project_id: f.project_id.clone(),
            span,
            start: f.timestamp / span * span,
            disposition: f.analysis_disposition.clone(),
            disposition_type: f.analysis_disposition_type.clone(),
        })
    }

    /// The row's primary key: a digest, since the parts may be null or
    /// long (PostgreSQL bounds an index entry).
    fn digest(&self) -> String {
        let parts = (
            &self.project_id,
            self.span,
            self.start,
            &self.disposition,
            &self.disposition_type,
        );
        let text = serde_json::to_string(&parts).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn row(self, activities: i64) -> activity_rollup::Model {
        activity_rollup::Model {
            key: self.digest(),
            project_id: self.project_id,
            span: self.span,
            start: self.start,
            disposition: self.disposition,
            disposition_type: self.disposition_type,
            activities,
        }
    }
}

/// Changes to the counts a batch makes.
#[derive(Debug, Default)]
pub struct Deltas(HashMap<Key, i64>);

impl Deltas {
    pub fn add(&mut self, key: Key, n: i64) {
        *self.0.entry(key).or_default() += n;
    }

    /// The non-zero changes as rows to add, in key order (so concurrent
    /// batches on PostgreSQL lock shared rows in one order), and whether
    /// any count went down (a row may have reached zero).
    pub fn rows(self) -> (Vec<activity_rollup::Model>, bool) {
        let mut rows: Vec<activity_rollup::Model> = self
            .0
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|(key, n)| key.row(n))
            .collect();
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let fell = rows.iter().any(|r| r.activities < 0);
        (rows, fell)
    }
}

#[derive(FromQueryResult)]
struct Counted {
    project_id: Option<String>,
    start: i64,
    disposition: Option<String>,
    disposition_type: Option<String>,
    activities: i64,
}

/// Count every current activity again into an empty rollup; the number
/// of rows written.
pub async fn rebuild<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    use activity::Column as A;
    activity_rollup::Entity::delete_many().exec(db).await?;
    let mut written = 0;
    for span in SPANS {
        let start = Expr::col(A::Timestamp).div(span).mul(span);
        let counted = activity::Entity::find()
            .select_only()
            .column(A::ProjectId)
            .column_as(start, "start")
            .column_as(A::AnalysisDisposition, "disposition")
            .column_as(A::AnalysisDispositionType, "disposition_type")
            .column_as(Expr::cust("COUNT(*)"), "activities")
            .group_by(A::ProjectId)
            .group_by(Expr::col("start"))
            .group_by(A::AnalysisDisposition)
            .group_by(A::AnalysisDispositionType)
            .into_model::<Counted>()
            .all(db)
            .await?;
        let rows: Vec<activity_rollup::ActiveModel> = counted
            .into_iter()
            .map(|c| {
                Key {
                    project_id: c.project_id,
                    span,
                    start: c.start,
                    disposition: c.disposition,
                    disposition_type: c.disposition_type,
                }
                .row(c.activities)
                .into()
            })
            .collect();
        written += rows.len() as u64;
        for chunk in rows.chunks(500) {
            activity_rollup::Entity::insert_many(chunk.to_vec())
                .exec(db)
                .await?;
        }
    }
    Ok(written)
}

/// Build the rollup if it is empty while activities exist: the first start
/// after the migration that added it. (Every current activity is counted
/// in some row, so an empty rollup beside stored activities was never
/// built.) One transaction; on PostgreSQL instances starting together
/// take turns, and the later ones find it built.
pub async fn build_if_missing(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Any constant of leadql's own: the first bytes of "rollup".
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7526746143300)")
            .await?;
    }
    let exists = |q: sea_orm::sea_query::SelectStatement| {
        let txn = &txn;
        async move { Ok::<bool, DbErr>(txn.query_one(&q).await?.is_some()) }
    };
    let activities = activity::Entity::find()
        .select_only()
        .column(activity::Column::Id)
        .limit(1)
        .into_query();
    let counted = activity_rollup::Entity::find()
        .select_only()
        .column(activity_rollup::Column::Key)
        .limit(1)
        .into_query();
    if exists(activities).await? && !exists(counted).await? {
        let rows = rebuild(&txn).await?;
        tracing::info!(rows, "activity rollup built from the stored activities");
    }
    txn.commit().await
}
