//! `leadql import`: payloads from JSON or NDJSON files (or stdin) through
//! exactly the path a webhook delivery takes ([`crate::ingest::accept`]).

use crate::ingest::{accept, NotAccepted};
use crate::store::Status;
use crate::AppState;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::Path;

/// Outcome counts of an import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub stored: u64,
    pub duplicate: u64,
    pub stale: u64,
    /// Kept in the rejected-deliveries table (malformed or without identity).
    pub rejected: u64,
    /// Not stored (database error); run the import again to retry them.
    pub failed: u64,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stored {}, duplicate {}, stale {}, rejected {}",
            self.stored, self.duplicate, self.stale, self.rejected
        )?;
        if self.failed > 0 {
            write!(f, ", failed {}", self.failed)?;
        }
        Ok(())
    }
}

/// Read a file (`-` for stdin) into its payload bodies: a JSON object, a
/// JSON array of objects, or NDJSON (one payload per line).
pub fn read_bodies(source: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut text = Vec::new();
    if source.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut text)?;
    } else {
        text = std::fs::read(source)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", source.display()))?;
    }
    Ok(split_bodies(&text))
}

/// Split a file's bytes into payload bodies.
pub fn split_bodies(text: &[u8]) -> Vec<Vec<u8>> {
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Vec::new();
    }
    // One document (an object, or an array of payloads) …
    if let Ok(doc) = serde_json::from_slice::<&serde_json::value::RawValue>(trimmed) {
        let raw = doc.get().trim_start();
        if raw.starts_with('[') {
            if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw) {
                return items
                    .into_iter()
                    .map(|i| i.get().as_bytes().to_vec())
                    .collect();
            }
        }
        return vec![trimmed.to_vec()];
    }
    // … or NDJSON: every non-blank line is a delivery (malformed ones too,
    // so they are rejected and kept like a bad webhook body).
    text.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.trim_ascii().is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Ingest `bodies`, many in flight at once so they share group commits.
pub async fn import(state: &AppState, bodies: Vec<Vec<u8>>, show_progress: bool) -> ImportSummary {
    let progress = if show_progress {
        ProgressBar::new(bodies.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} payloads  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = ImportSummary::default();
    // Enough in flight that the next batch is parsed and waiting while one
    // commits.
    let in_flight = state.ingestor.capacity().saturating_mul(4).max(1);
    let mut answers = futures::stream::iter(bodies.iter())
        .map(|body| accept(&state.db, &state.ingestor, body, Some("application/json")))
        .buffer_unordered(in_flight);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(Status::Stored) => summary.stored += 1,
            Ok(Status::Duplicate) => summary.duplicate += 1,
            Ok(Status::Stale) => summary.stale += 1,
            Err(NotAccepted::Rejected {
                rejection,
                rejected_id,
            }) => {
                summary.rejected += 1;
                progress.suspend(|| {
                    tracing::warn!(rejected_id, error = rejection.message(), "payload rejected")
                });
            }
            Err(NotAccepted::NotStored(err)) => {
                summary.failed += 1;
                progress.suspend(|| tracing::error!(error = %err, "payload not stored"));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    summary
}

#[cfg(test)]
mod tests {
    use super::split_bodies;

    #[test]
    fn splits_objects_arrays_and_ndjson() {
        assert_eq!(split_bodies(b" {\n \"a\": 1\n}\n").len(), 1);
        assert_eq!(
            split_bodies(b"[{\"a\":1}, {\"a\":2}]"),
            vec![b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()]
        );
        assert_eq!(
            split_bodies(b"{\"a\":1}\n\n{\"a\":2}\r\nnot json\n").len(),
            3
        );
        assert!(split_bodies(b"  \n").is_empty());
    }
}

/// What `replay_rejected` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Now accepted (stored, duplicate or stale) and marked replayed.
    pub accepted: u64,
    /// Still not accepted by this version; left as they are.
    pub still_rejected: u64,
}

/// Try every rejected delivery not yet replayed again, through the webhook's
/// parse and store path (after a fix that reads more payloads). Accepted ones
/// are marked replayed; the rest stay, unchanged, for inspection.
pub async fn replay_rejected(state: &AppState) -> anyhow::Result<ReplaySummary> {
    use crate::ingest::payload::parse;
    let mut summary = ReplaySummary::default();
    for rejected in crate::store::pending_rejections(&state.db).await? {
        match parse(&rejected.body) {
            Ok(delivery) => match state.ingestor.submit(delivery).await {
                Ok(_) => {
                    crate::store::mark_replayed(&state.db, rejected.id).await?;
                    summary.accepted += 1;
                }
                // Still too large for the database to index.
                Err(crate::ingest::pipeline::IngestError::TooLarge(_)) => {
                    summary.still_rejected += 1
                }
                Err(err) => return Err(err.into()),
            },
            Err(_) => summary.still_rejected += 1,
        }
    }
    Ok(summary)
}
