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
                ));
                jobs
            })
            .collect();
        Ingestor { jobs: jobs.into() }
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
                for (job, status) in batch.drain(..).zip(result.statuses) {
                    let _ = job.reply.send(Ok(status));
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
