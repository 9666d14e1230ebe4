//! The demo data `leadql serve --demo` loads: the platform's example
//! payloads and the other fixtures, plus a small generated data set.

use crate::ingest::{accept, NotAccepted};
use crate::AppState;

/// Fixture payloads compiled into the binary, so `--demo` works anywhere.
pub const FIXTURES: &[(&str, &str)] = &[
    (
        "connected-interested.json",
        include_str!("../fixtures/connected-interested.json"),
    ),
    (
        "not-connected-busy.json",
        include_str!("../fixtures/not-connected-busy.json"),
    ),
    (
        "schedule-activity.json",
        include_str!("../fixtures/schedule-activity.json"),
    ),
    (
        "create-no-result.json",
        include_str!("../fixtures/create-no-result.json"),
    ),
    (
        "call-no-analysis.json",
        include_str!("../fixtures/call-no-analysis.json"),
    ),
    (
        "update-success.json",
        include_str!("../fixtures/update-success.json"),
    ),
    (
        "update-failure.json",
        include_str!("../fixtures/update-failure.json"),
    ),
    (
        "hindi-transcript.json",
        include_str!("../fixtures/hindi-transcript.json"),
    ),
];

/// Load the fixtures and `generated_leads` synthetic leads, dated from
/// 2026-01-01 (fixed, for tests).
pub async fn load(state: &AppState, generated_leads: usize) -> anyhow::Result<usize> {
    load_bodies(state, crate::generate::generate(generated_leads, 7)).await
}

/// Load the fixtures and `generated_leads` synthetic leads spread over the
/// 30 days up to now (what `serve --demo` loads), so "today" and "this
/// week" have data whenever the demo runs, and callbacks are due and
/// ahead.
pub async fn load_recent(state: &AppState, generated_leads: usize) -> anyhow::Result<usize> {
    // A lead's attempts span up to an hour after its start: start early
    // enough that the last ones are not in the future.
    // Calls back are generated up to now only, so the latest callbacks
    // are still to be made: some due, some ahead.
    let now = chrono::Utc::now().timestamp_millis();
    let start = now - 30 * 86_400_000 - 2 * 3_600_000;
    load_bodies(
        state,
        crate::generate::generate_until(generated_leads, 7, start, now),
    )
    .await
}

async fn load_bodies(state: &AppState, generated: Vec<String>) -> anyhow::Result<usize> {
    let mut bodies: Vec<String> = FIXTURES.iter().map(|(_, body)| body.to_string()).collect();
    bodies.extend(generated);
    // Concurrently, as a platform would send them; the result does not
    // depend on the order (see the convergence tests).
    use futures::stream::{self, StreamExt};
    let results: Vec<Result<(), anyhow::Error>> = stream::iter(bodies.iter())
        .map(|body| async move {
            match accept(
                &state.db,
                &state.ingestor,
                body.as_bytes(),
                Some("application/json"),
            )
            .await
            {
                Ok(_) => Ok(()),
                Err(NotAccepted::Rejected { rejection, .. }) => Err(anyhow::anyhow!(
                    "a demo payload was rejected: {}",
                    rejection.message()
                )),
                Err(NotAccepted::NotStored(err)) => Err(err.into()),
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut stored = 0;
    for result in results {
        result?;
        stored += 1;
    }
    Ok(stored)
}
