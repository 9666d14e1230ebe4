//! The callbacks projection: a lead's callbacks are a pure function of its
//! activities (the promise each noted at ingest, and its call attempts),
//! recomputed whenever one of them changes, so delivery order, retries and
//! `reproject` all give the same rows.
//!
//! DESIGN's statuses, with what is stored for them (`state`):
//! - DONE (`done`): a call attempt on the lead at or after dueAt minus 15
//!   minutes, after the promise (`fulfilled_by`). A promise whose moment
//!   could not be read is done by any later call attempt.
//! - SUPERSEDED (`superseded`): a newer promise for the lead made before
//!   this one was done (strictly before: the call that honours a promise
//!   and promises again leaves the first one done).
//! - PENDING / DUE (`open`): neither; which of the two is decided by
//!   `due_at` against the clock when asked, never stored.

use super::projection::LeadFacts;
use crate::ingest::payload::callback::{Promise, Rules};
use entity::callback;

/// How early a call may come and still honour a promise.
pub const EARLY_MS: i64 = 15 * 60 * 1000;

/// The stored states.
pub const OPEN: &str = "open";
pub const DONE: &str = "done";
pub const SUPERSEDED: &str = "superseded";

/// The promise an activity's facts note.
fn promise(f: &LeadFacts) -> Option<Promise> {
    f.callback_promised.then(|| Promise {
        tool_call_id: f.callback_tool_call_id.clone(),
        local_date: f.callback_date.clone(),
        local_time: f.callback_time.clone(),
        payload_offset: f.callback_offset,
    })
}

/// Whether an activity is a call attempt (what honours a promise).
fn is_call(f: &LeadFacts) -> bool {
    f.r#type
        .as_deref()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("call"))
}

/// The callbacks of `lead_id` from all of its activities' facts (in any
/// order). They carry `project`, the lead's project (whose readers see
/// them, and whose zone reads them), else their activity's.
pub fn project_callbacks(
    lead_id: &str,
    project: Option<&str>,
    facts: &[LeadFacts],
    rules: &Rules,
) -> Vec<callback::Model> {
    let mut in_order: Vec<&LeadFacts> = facts.iter().collect();
    in_order.sort_unstable_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    let promises: Vec<(&LeadFacts, Promise)> = in_order
        .iter()
        .filter_map(|f| promise(f).map(|p| (*f, p)))
        .collect();
    let calls: Vec<&LeadFacts> = in_order.iter().copied().filter(|f| is_call(f)).collect();
    promises
        .iter()
        .enumerate()
        .map(|(i, (made, promise))| {
            let project_id = project.or(made.project_id.as_deref());
            let (due, zone) = rules.due_at(promise, project_id);
            let due_at = due.map(|d| d.timestamp_millis());
            // A call after the promise, from 15 minutes before its moment.
            let fulfilled = calls.iter().find(|c| {
                c.timestamp > made.timestamp && due_at.is_none_or(|d| c.timestamp >= d - EARLY_MS)
            });
            let newer = promises[i + 1..]
                .iter()
                .map(|(f, _)| *f)
                .find(|next| fulfilled.is_none_or(|done| next.timestamp < done.timestamp));
            let (state, fulfilled_by, superseded_by, closed_at) = match (newer, fulfilled) {
                (Some(next), _) => (
                    SUPERSEDED,
                    None,
                    Some(next.id.clone()),
                    Some(next.timestamp),
                ),
                (None, Some(done)) => (DONE, Some(done.id.clone()), None, Some(done.timestamp)),
                (None, None) => (OPEN, None, None, None),
            };
            callback::Model {
                id: made.id.clone(),
                lead_id: lead_id.to_string(),
                activity_id: made.id.clone(),
                project_id: project_id.map(str::to_string),
                tool_call_id: promise.tool_call_id.clone(),
                requested_at: made.timestamp,
                due_at,
                due_order: due_at.unwrap_or(i64::MAX),
                local_date: promise.local_date.clone(),
                local_time: promise.local_time.clone(),
                timezone: Some(zone.name()),
                state: state.to_string(),
                open_lead_id: (state == OPEN).then(|| lead_id.to_string()),
                fulfilled_by,
                superseded_by,
                closed_at,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60 * 1000;
    /// 2026-01-13T12:30:00Z: 18:00 at +05:30.
    const DUE: i64 = 1_768_307_400_000;

    fn activity(id: &str, ts: i64, kind: &str) -> LeadFacts {
        LeadFacts {
            id: id.into(),
            lead_id: "L".into(),
            timestamp: ts,
            to_state: None,
            lead_disposition: None,
            lead_summary: None,
            analysis_disposition: None,
            analysis_disposition_type: None,
            analysis_summary: None,
            project_id: Some("P".into()),
            process_id: None,
            reference_id: None,
            lead_name: None,
            r#type: Some(kind.into()),
            callback_promised: false,
            callback_tool_call_id: None,
            callback_date: None,
            callback_time: None,
            callback_offset: None,
            is_connected: None,
            has_conversation: false,
            call_status: None,
        }
    }

    /// A call at `ts` promising 13/01/2026 `time` at +05:30.
    fn promising(id: &str, ts: i64, time: &str) -> LeadFacts {
        let mut f = activity(id, ts, "call");
        f.callback_promised = true;
        f.callback_tool_call_id = Some(format!("tool-{id}"));
        f.callback_date = Some("13/01/2026".into());
        f.callback_time = Some(time.into());
        f.callback_offset = Some(330);
        f
    }

    fn project(facts: &[LeadFacts]) -> Vec<callback::Model> {
        project_callbacks("L", None, facts, &Rules::default())
    }

    #[test]
    fn an_unhonoured_promise_is_open_with_its_moment_read_at_the_payloads_offset() {
        let made = DUE - 6 * 60 * MINUTE;
        let rows = project(&[promising("a", made, "18:00")]);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.state, OPEN);
        assert_eq!(row.due_at, Some(DUE));
        assert_eq!(row.due_order, DUE);
        assert_eq!(row.timezone.as_deref(), Some("+05:30"));
        assert_eq!(row.requested_at, made);
        assert_eq!(row.tool_call_id.as_deref(), Some("tool-a"));
        assert_eq!(row.project_id.as_deref(), Some("P"));
    }

    #[test]
    fn a_call_exactly_fifteen_minutes_early_honours_it_and_one_a_millisecond_earlier_does_not() {
        let made = DUE - 6 * 60 * MINUTE;
        let on_the_edge = project(&[
            promising("a", made, "18:00"),
            activity("b", DUE - 15 * MINUTE, "call"),
        ]);
        assert_eq!(on_the_edge[0].state, DONE);
        assert_eq!(on_the_edge[0].fulfilled_by.as_deref(), Some("b"));
        assert_eq!(on_the_edge[0].closed_at, Some(DUE - 15 * MINUTE));
        let too_early = project(&[
            promising("a", made, "18:00"),
            activity("b", DUE - 15 * MINUTE - 1, "call"),
        ]);
        assert_eq!(too_early[0].state, OPEN);
        assert_eq!(too_early[0].fulfilled_by, None);
    }

    #[test]
    fn a_schedule_does_not_honour_a_promise_and_the_promising_call_itself_does_not() {
        let rows = project(&[
            promising("a", DUE - MINUTE, "18:00"),
            activity("s", DUE + MINUTE, "schedule"),
        ]);
        assert_eq!(rows[0].state, OPEN);
    }

    #[test]
    fn a_newer_promise_before_the_first_was_honoured_supersedes_it() {
        let rows = project(&[
            promising("a", DUE - 300 * MINUTE, "18:00"),
            promising("b", DUE - 200 * MINUTE, "19:00"),
            activity("c", DUE + 61 * MINUTE, "call"),
        ]);
        assert_eq!(rows[0].state, SUPERSEDED);
        assert_eq!(rows[0].superseded_by.as_deref(), Some("b"));
        assert_eq!(rows[0].fulfilled_by, None);
        assert_eq!(rows[1].state, DONE);
        assert_eq!(rows[1].fulfilled_by.as_deref(), Some("c"));
    }

    #[test]
    fn the_call_that_honours_a_promise_and_promises_again_leaves_the_first_done() {
        let rows = project(&[
            promising("a", DUE - 300 * MINUTE, "18:00"),
            promising("b", DUE + 2 * MINUTE, "21:00"),
        ]);
        assert_eq!(rows[0].state, DONE);
        assert_eq!(rows[0].fulfilled_by.as_deref(), Some("b"));
        assert_eq!(rows[1].state, OPEN);
    }

    #[test]
    fn unreadable_text_is_kept_with_no_moment_sorted_last_and_done_by_a_later_call() {
        let rows = project(&[promising("a", DUE, "after lunch")]);
        assert_eq!(rows[0].due_at, None);
        assert_eq!(rows[0].due_order, i64::MAX);
        assert_eq!(rows[0].local_time.as_deref(), Some("after lunch"));
        assert_eq!(rows[0].state, OPEN);
        let rows = project(&[
            promising("a", DUE, "after lunch"),
            activity("b", DUE + MINUTE, "call"),
        ]);
        assert_eq!(rows[0].state, DONE);
    }

    #[test]
    fn the_same_facts_in_any_order_give_the_same_callbacks() {
        let facts = vec![
            promising("a", DUE - 300 * MINUTE, "18:00"),
            activity("x", DUE - 250 * MINUTE, "call"),
            promising("b", DUE - 200 * MINUTE, "19:00"),
            activity("c", DUE + 61 * MINUTE, "call"),
            promising("d", DUE + 61 * MINUTE, "not a time"),
        ];
        let forward = project(&facts);
        let mut reversed = facts.clone();
        reversed.reverse();
        assert_eq!(forward, project(&reversed));
        assert_eq!(forward.len(), 3);
        // Of all the promises, only the newest may be open.
        let open: Vec<&str> = forward
            .iter()
            .filter(|c| c.open_lead_id.is_some())
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(open, ["d"]);
    }

    #[test]
    fn a_projects_zone_comes_before_the_payloads_offset() {
        let rules = Rules::new(
            &["callback".to_string()],
            [(
                "P".to_string(),
                crate::ingest::payload::callback::Zone::parse("Europe/London").unwrap(),
            )]
            .into(),
            crate::ingest::payload::callback::Zone::parse("UTC").unwrap(),
        );
        let rows = project_callbacks("L", None, &[promising("a", DUE, "18:00")], &rules);
        assert_eq!(rows[0].timezone.as_deref(), Some("Europe/London"));
        // 18:00 in London in January is 18:00 UTC.
        assert_eq!(rows[0].due_at, Some(DUE + 330 * MINUTE));
    }
}
