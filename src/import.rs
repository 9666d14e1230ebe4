//! `leadql import`: payloads from JSON or NDJSON files (or stdin) through
//! exactly the path a webhook delivery takes ([`crate::ingest::accept`]).

use crate::ingest::{accept, NotAccepted};
use crate::store::Status;
use crate::AppState;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, Read};
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

impl ImportSummary {
    /// Every payload read.
    pub fn total(&self) -> u64 {
        self.stored + self.duplicate + self.stale + self.rejected + self.failed
    }
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

/// The payload bodies of a file (`-` for stdin), read as they are
/// imported: NDJSON a line at a time, so a file of millions of payloads is
/// never held in memory whole; one JSON document (an object, or an array
/// of payloads) read whole, as it must be parsed whole. Whether a source is
/// NDJSON is told from its first non-blank line: a whole JSON object on a
/// line of its own.
pub struct Bodies {
    /// What the progress bar counts to: bytes for NDJSON from a file,
    /// payloads for a document; unknown for NDJSON from stdin.
    pub length: Option<u64>,
    reading: Reading,
}

enum Reading {
    /// NDJSON: the first body (already read) and the rest of the lines.
    Lines {
        first: Option<(Vec<u8>, u64)>,
        reader: Box<dyn BufRead + Send>,
    },
    /// A document, split.
    Whole(std::vec::IntoIter<Vec<u8>>),
}

/// Open `source` (`-` for stdin) for [`import`].
pub fn open(source: &Path) -> anyhow::Result<Bodies> {
    let cannot = |e: std::io::Error| anyhow::anyhow!("cannot read {}: {e}", source.display());
    let (mut reader, size): (Box<dyn BufRead + Send>, Option<u64>) = if source.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let file = std::fs::File::open(source).map_err(cannot)?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, file)), size)
    };
    let mut read = Vec::new();
    match non_blank_line(&mut *reader, &mut read).map_err(cannot)? {
        Some(first) if is_object(&first) => Ok(Bodies {
            length: size,
            reading: Reading::Lines {
                first: Some((first, read.len() as u64)),
                reader,
            },
        }),
        _ => {
            reader.read_to_end(&mut read).map_err(cannot)?;
            Ok(whole(&read))
        }
    }
}

/// Read `reader` to the end of its next non-blank line, appending what is
/// read to `read`: that line without its line break, or None at the end.
fn non_blank_line(
    reader: &mut dyn BufRead,
    read: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        let start = read.len();
        if reader.read_until(b'\n', read)? == 0 {
            return Ok(None);
        }
        let content = line_content(&read[start..]);
        if !content.trim_ascii().is_empty() {
            return Ok(Some(content.to_vec()));
        }
    }
}

fn whole(text: &[u8]) -> Bodies {
    let bodies = split_bodies(text);
    Bodies {
        length: Some(bodies.len() as u64),
        reading: Reading::Whole(bodies.into_iter()),
    }
}

/// A line without its line break (`\n` or `\r\n`), as NDJSON's bodies are
/// taken (see [`split_bodies`]).
fn line_content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether `line` is one whole JSON object.
fn is_object(line: &[u8]) -> bool {
    line.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

impl Iterator for Bodies {
    /// A body, and how far it moves the progress bar.
    type Item = std::io::Result<(Vec<u8>, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.reading {
            Reading::Whole(bodies) => bodies.next().map(|body| Ok((body, 1))),
            Reading::Lines { first, reader } => {
                if let Some(first) = first.take() {
                    return Some(Ok(first));
                }
                let mut read = Vec::new();
                match non_blank_line(&mut **reader, &mut read) {
                    Ok(Some(body)) => Some(Ok((body, read.len() as u64))),
                    Ok(None) => None,
                    Err(err) => Some(Err(err)),
                }
            }
        }
    }
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
/// A thread reads them ahead of the writers, at most a few batches ahead,
/// so memory stays bounded whatever the file's size. A read error ends the
/// import once what was read is stored, and is returned (importing the
/// file again stores the rest: what is stored already is a duplicate).
pub async fn import(
    state: &AppState,
    bodies: Bodies,
    show_progress: bool,
) -> anyhow::Result<ImportSummary> {
    let progress = match (show_progress, bodies.length) {
        (false, _) => ProgressBar::hidden(),
        (true, Some(length)) => ProgressBar::new(length),
        (true, None) => ProgressBar::no_length(),
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}%  {msg}  {elapsed}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Enough in flight that the next batch is parsed and waiting while one
    // commits.
    let in_flight = state.ingestor.capacity().saturating_mul(4).max(1);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(in_flight);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        for body in bodies {
            if sender.blocking_send(body?).is_err() {
                break;
            }
        }
        Ok(())
    });
    let mut summary = ImportSummary::default();
    let mut answers = futures::stream::poll_fn(|cx| receiver.poll_recv(cx))
        .map(|(body, weight): (Vec<u8>, u64)| async move {
            let answer = accept(&state.db, &state.ingestor, &body, Some("application/json")).await;
            (answer, weight)
        })
        .buffer_unordered(in_flight);
    while let Some((answer, weight)) = answers.next().await {
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
        progress.inc(weight);
        if show_progress {
            progress.set_message(format!("{} payloads", summary.total()));
        }
    }
    progress.finish_and_clear();
    reader
        .await
        .map_err(|err| anyhow::anyhow!("the reader stopped: {err}"))?
        .map_err(|err| {
            anyhow::anyhow!("reading stopped after {} payloads: {err}", summary.total())
        })?;
    Ok(summary)
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

    /// Reading a file as it is imported gives the bodies that splitting it
    /// whole gives, whether it is NDJSON (read a line at a time) or a
    /// document.
    #[test]
    fn opened_files_give_the_bodies_of_the_whole_text() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [&[u8]; 8] = [
            b"{\"a\":1}\n{\"a\":2}\r\n\n  \nnot json\n{\"a\":3}",
            b"\n\n{\"a\":1}\n{\"a\":2}\n",
            b"{\n  \"a\": 1\n}\n",
            b"[{\"a\":1}, {\"a\":2}]",
            b"[\n {\"a\":1},\n {\"a\":2}\n]\n",
            b"{\"activityId\": \"broken\n{\"a\":2}\n",
            b"{\"a\":1}",
            b"  \n",
        ];
        for (i, text) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.json"));
            std::fs::write(&path, text).unwrap();
            let bodies = super::open(&path).unwrap();
            let read: Vec<Vec<u8>> = bodies.map(|b| b.unwrap().0).collect();
            assert_eq!(read, split_bodies(text), "case {i}");
        }
        // NDJSON is read a line at a time; the progress bar counts its
        // bytes, blank lines included.
        for text in [cases[0], cases[1]] {
            let path = dir.path().join("lines.ndjson");
            std::fs::write(&path, text).unwrap();
            let bodies = super::open(&path).unwrap();
            assert_eq!(bodies.length, Some(text.len() as u64));
            let weights: u64 = bodies.map(|b| b.unwrap().1).sum();
            assert_eq!(weights, text.len() as u64);
        }
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
