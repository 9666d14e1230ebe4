//! The group-commit pipeline every delivery goes through (webhook and
//! `leadql import` alike).
//!
//! Callers submit a parsed delivery and wait. Writer tasks take whatever
//! deliveries are waiting (up to a batch), store them in one transaction
//! and answer each caller only after the commit: a positive answer always
//! means durable. While one batch commits, the next one fills, so the cost
//! of a commit is shared by every delivery that arrived meanwhile.

use super::payload::callback::Rules;
use super::payload::Delivery;
use crate::feed::Feed;
use crate::store::{self, Mode, Status};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, TransactionOptions, TransactionTrait};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Why a delivery could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The database cannot be reached; the sender should retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the write.
    #[error("storing the delivery failed: {0}")]
    Failed(String),
    /// A value is too large for the database to index: storing it again
    /// would fail again (see [`store::is_too_large_to_index`]).
    #[error("{0}")]
    TooLarge(String),
    /// The pipeline is shutting down.
    #[error("leadql is shutting down")]
    ShuttingDown,
}

impl From<DbErr> for IngestError {
    fn from(err: DbErr) -> Self {
        if store::is_unavailable(&err) {
            IngestError::Unavailable(err.to_string())
        } else if store::is_too_large_to_index(&err) {
            IngestError::TooLarge(err.to_string())
        } else {
            IngestError::Failed(err.to_string())
        }
    }
}

/// Tuning of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Most deliveries committed together.
    pub max_batch: usize,
    /// Concurrent writer tasks, each with its own share of the leads (1 on
    /// SQLite, which has one writer anyway).
    pub workers: usize,
}

impl PipelineConfig {
    pub fn for_backend(backend: DbBackend) -> Self {
        match backend {
            DbBackend::Sqlite => PipelineConfig {
                max_batch: 256,
                workers: 1,
            },
            // Two writers measured best on two cores; more help on bigger machines.
            _ => PipelineConfig {
                max_batch: 128,
                workers: 2,
            },
        }
    }

    /// Use `workers` writers (`--ingest-workers`), at least one, and on
    /// SQLite exactly one: SQLite has a single writer, so another writer
    /// connection only waits for its lock. Measured at 32 senders on one
    /// machine (`LEADQL_INGEST_WORKERS=4`, `cargo bench --bench ingest`),
    /// four writers stored 564–708 deliveries/s where one stored
    /// 1,428–1,634/s, with p99 at 250–340 ms instead of 49–57 ms. Returns what
    /// to warn about when the setting is not applied as given.
    pub fn set_workers(&mut self, backend: DbBackend, workers: usize) -> Option<String> {
        if backend == DbBackend::Sqlite && workers > 1 {
            self.workers = 1;
            return Some(format!(
                "--ingest-workers / LEADQL_INGEST_WORKERS is {workers}, but SQLite has one writer: using 1"
            ));
        }
        self.workers = workers.max(1);
        None
    }

    /// What `leadql import` commits together: larger batches than a
    /// server's, since nobody waits on one delivery of an import, and each
    /// commit's cost (writing and syncing the pages it touched, flushing the
    /// search index) is shared by more deliveries. Measured with 103,553
    /// generated payloads: on SQLite 4,067–4,493/s at 256, 5,465–6,199/s at
    /// 1,024 and 6,572/s at 2,048; on PostgreSQL 4,301/s at 128, 5,733/s at
    /// 1,024 and 4,959/s at 2,048.
    pub fn for_import(backend: DbBackend) -> Self {
        let serve = Self::for_backend(backend);
        PipelineConfig {
            max_batch: match backend {
                DbBackend::Sqlite => 2048,
                _ => 1024,
            },
            ..serve
        }
    }
}

struct Job {
    delivery: Delivery,
    reply: oneshot::Sender<Result<Status, IngestError>>,
    /// The submitter's span, when traces are on: the batch links to it.
    span: Option<tracing::Span>,
}

/// Handle to the pipeline; cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    /// One queue per writer; a lead's deliveries always go to the same one,
    /// so writers of one instance never wait on each other's lead locks.
    jobs: Arc<[mpsc::Sender<Job>]>,
    /// Deliveries the writers take at once, all together.
    capacity: usize,
}

impl Ingestor {
    /// Start the writer tasks. They stop once every handle is dropped and
    /// the queue is drained.
    pub fn start(
        db: DatabaseConnection,
        config: PipelineConfig,
        feed: Feed,
        metrics: crate::telemetry::Metrics,
        rules: Arc<Rules>,
    ) -> Self {
        let upkeep = Arc::new(Upkeep::default());
        let jobs: Vec<mpsc::Sender<Job>> = (0..config.workers.max(1))
            .map(|_| {
                let (jobs, rx) = mpsc::channel::<Job>(config.max_batch * 8);
                tokio::spawn(writer(
                    db.clone(),
                    rx,
                    config.max_batch,
                    feed.clone(),
                    metrics.clone(),
                    rules.clone(),
                    upkeep.clone(),
                ));
                jobs
            })
            .collect();
        Ingestor {
            capacity: jobs.len() * config.max_batch.max(1),
            jobs: jobs.into(),
        }
    }

    /// Deliveries the writers take at once, all together: a caller that
    /// keeps a few times this many submitted keeps every batch full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Store one delivery; returns once it is committed.
    pub async fn submit(&self, delivery: Delivery) -> Result<Status, IngestError> {
        let (reply, answer) = oneshot::channel();
        let shard = {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(&delivery.lead_id);
            (hash % self.jobs.len() as u64) as usize
        };
        self.jobs[shard]
            .send(Job {
                delivery,
                reply,
                span: crate::otel::current(),
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

async fn writer(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    feed: Feed,
    metrics: crate::telemetry::Metrics,
    rules: Arc<Rules>,
    upkeep: Arc<Upkeep>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while next_batch(&mut rx, &mut batch, max_batch).await {
        let deliveries: Vec<&Delivery> = batch.iter().map(|j| &j.delivery).collect();
        metrics.record(|| {
            metrics::histogram!(crate::telemetry::BATCH_SIZE).record(deliveries.len() as f64)
        });
        let span = crate::otel::batch(
            batch.len(),
            batch.iter().map(|j| j.span.as_ref().and_then(|s| s.id())),
        );
        let committed = commit(&db, &deliveries, &rules)
            .instrument(crate::otel::commit(&span))
            .await;
        match committed {
            Ok(result) => {
                feed.committed(result.events > 0, result.activities > 0);
                let stored = result
                    .statuses
                    .iter()
                    .filter(|s| **s == Status::Stored)
                    .count();
                for (job, status) in batch.drain(..).zip(result.statuses) {
                    let _ = job.reply.send(Ok(status));
                }
                // After answering: the senders of this batch do not wait.
                if upkeep.due(stored as u64) && upkeep.needed(&db).await {
                    upkeep.analyze(&db).await;
                }
            }
            Err(err) if batch.len() > 1 && !store::is_unavailable(&err) => {
                // One bad delivery must not fail its neighbours: retry alone.
                tracing::warn!(error = %err, size = batch.len(), "batch failed; storing its deliveries one by one");
                for job in batch.drain(..) {
                    let answer = match commit(&db, &[&job.delivery], &rules).await {
                        Ok(result) => {
                            feed.committed(result.events > 0, result.activities > 0);
                            Ok(result.statuses[0])
                        }
                        Err(err) => Err(log_failure(err, &job.delivery)),
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(err) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(log_failure(err.clone(), &job.delivery)));
                }
            }
        }
    }
}

/// Planner statistics kept by leadql when PostgreSQL's autovacuum is off.
///
/// A batch reads the stored versions and facts of its activities and
/// leads by lists of keys (`lead_id IN (…)`); a table PostgreSQL has never
/// analyzed gets the default estimate for such a list (half the table for
/// 128 keys), and every batch scans the whole table. Autovacuum analyzes
/// tables as they grow; where it is off (a tuned server, a test machine),
/// a growing table is never analyzed and ingest slows with its size: an
/// import of 30,000 leads read 32 million activity rows in 818 scans. So
/// then the writers analyze the columns ingest looks its rows up by (see
/// [`store::analyze_lookup_columns`]; the rest is left to whoever turned autovacuum
/// off, and `leadql import` analyzes everything at its end), first after
/// [`Upkeep::FIRST`] stored deliveries and again each time the count
/// doubles (a handful of times per import, each sampling a fixed number of
/// rows per table), after answering the batch that reached the count.
#[derive(Debug)]
pub(crate) struct Upkeep {
    /// Deliveries stored by this process.
    stored: AtomicU64,
    /// The count at which the next ANALYZE runs.
    next: AtomicU64,
}

impl Default for Upkeep {
    fn default() -> Self {
        Upkeep {
            stored: AtomicU64::new(0),
            next: AtomicU64::new(Upkeep::FIRST),
        }
    }
}

impl Upkeep {
    /// Stored deliveries before the first ANALYZE.
    const FIRST: u64 = 1_000;

    /// Whether this database needs leadql to analyze it: PostgreSQL with
    /// autovacuum off, for the server or for the activities table. Asked
    /// at each threshold, so a change of the setting is followed. (SQLite
    /// plans key lookups by its indexes without statistics; `leadql
    /// import` analyzes it at the end.)
    async fn needed(&self, db: &DatabaseConnection) -> bool {
        match store::autovacuum_off(db).await {
            Ok(off) => off,
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell whether autovacuum is on");
                false
            }
        }
    }

    /// Count `stored` deliveries; true for the one caller whose count
    /// reaches the next threshold (which then doubles).
    fn due(&self, stored: u64) -> bool {
        let total = self.stored.fetch_add(stored, Ordering::Relaxed) + stored;
        let next = self.next.load(Ordering::Relaxed);
        total >= next
            && self
                .next
                .compare_exchange(next, total * 2, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    async fn analyze(&self, db: &DatabaseConnection) {
        let started = std::time::Instant::now();
        match store::analyze_lookup_columns(db).await {
            Ok(_) => tracing::info!(
                stored = self.stored.load(Ordering::Relaxed),
                ms = started.elapsed().as_millis() as u64,
                "autovacuum is off: analyzed the columns ingest looks rows up by"
            ),
            Err(err) => tracing::warn!(error = %err, "autovacuum is off and ANALYZE failed"),
        }
    }
}

/// Wait for deliveries and take up to `max` of them; false once the
/// pipeline is closed and drained.
async fn next_batch(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) -> bool {
    if rx.recv_many(batch, max).await == 0 {
        return false;
    }
    // Let deliveries that are already being parsed join this batch: without
    // this, senders answered together return together and batches alternate
    // between full and nearly empty. Stop once a few rounds bring nothing.
    let mut quiet_rounds = 0;
    while batch.len() < max && quiet_rounds < 3 {
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        quiet_rounds = if batch.len() == before {
            quiet_rounds + 1
        } else {
            0
        };
    }
    true
}

fn log_failure(err: DbErr, delivery: &Delivery) -> IngestError {
    let err = IngestError::from(err);
    match &err {
        IngestError::Unavailable(_) => {
            tracing::warn!(error = %err, lead_id = %delivery.lead_id, source_id = %delivery.source_id, "database unavailable")
        }
        _ => {
            tracing::error!(error = %err, lead_id = %delivery.lead_id, source_id = %delivery.source_id, "storing a delivery failed")
        }
    }
    err
}

/// Store a batch in one transaction (on PostgreSQL, other instances are
/// notified of what it adds to the feeds at commit).
async fn commit(
    db: &DatabaseConnection,
    deliveries: &[&Delivery],
    rules: &Rules,
) -> Result<store::BatchResult, DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    let result = store::apply_batch(&txn, deliveries, store::now_ms(), Mode::Live, rules).await?;
    txn.commit().await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::{PipelineConfig, Upkeep};
    use sea_orm::DbBackend;

    #[test]
    fn sqlite_keeps_one_writer_whatever_the_setting() {
        let mut sqlite = PipelineConfig::for_backend(DbBackend::Sqlite);
        let warning = sqlite.set_workers(DbBackend::Sqlite, 4);
        assert_eq!(sqlite.workers, 1);
        let warning = warning.expect("a setting that is not applied is warned about");
        assert!(warning.contains("LEADQL_INGEST_WORKERS is 4"), "{warning}");
        assert_eq!(sqlite.set_workers(DbBackend::Sqlite, 1), None);
        assert_eq!(sqlite.workers, 1);

        let mut postgres = PipelineConfig::for_backend(DbBackend::Postgres);
        assert_eq!(postgres.set_workers(DbBackend::Postgres, 4), None);
        assert_eq!(postgres.workers, 4);
        // Zero writers would store nothing: at least one.
        assert_eq!(postgres.set_workers(DbBackend::Postgres, 0), None);
        assert_eq!(postgres.workers, 1);
    }

    #[test]
    fn upkeep_is_due_first_after_a_thousand_then_at_each_doubling() {
        let upkeep = Upkeep::default();
        let mut due_at = Vec::new();
        for batch in 1..=100u64 {
            if upkeep.due(100) {
                due_at.push(batch * 100);
            }
        }
        // 1,000, then twice the count reached: 2,000, 4,000, 8,000.
        assert_eq!(due_at, vec![1_000, 2_000, 4_000, 8_000]);
        // A batch far past the threshold is due once, not once per step.
        let upkeep = Upkeep::default();
        assert!(upkeep.due(5_000));
        assert!(!upkeep.due(4_999));
        assert!(upkeep.due(1));
    }
}
