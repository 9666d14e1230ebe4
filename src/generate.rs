//! Synthetic payload streams (`leadql generate`) for demos, scale tests and
//! benchmarks: several attempts per lead (busy, no answer, completed), schedule
//! activities in between, transcripts in English and Hindi, tool calls,
//! extracted variables, update-lead results, and the delivery faults of a
//! real platform: some duplicates and out-of-order deliveries.
//! The same seed gives the same stream.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::Write;

const PROJECTS: &[&str] = &[
    "681db2d0a1b2c3d4e5f60120",
    "681dbf0a1b2c3d4e5f645120",
    "6820aa11b2c3d4e5f6a70001",
    "6820bb22c3d4e5f6a7b80002",
];
const PROCESSES: &[&str] = &["6932eb3a1b2c3d4e5fac2f00d", "6932ec4b2c3d4e5f6bd3f011"];
const NAMES: &[&str] = &[
    "John Doe",
    "Priya Sharma",
    "Rahul Verma",
    "Asha Patel",
    "Vikram Singh",
    "Meera Iyer",
    "Arjun Nair",
    "Sara Khan",
    "राहुल शर्मा",
    "सुनीता देवी",
    "Amit Kumar",
    "Neha Gupta",
];
const CIRCLES: &[&str] = &["GJ", "MH", "UP", "KA", "TN", "DL"];
/// (disposition, dispositionType, share in percent of connected calls)
const OUTCOMES: &[(&str, &str, u32)] = &[
    ("Interested", "positive", 30),
    ("Not Interested", "failure", 30),
    ("Callback Requested", "neutral", 25),
    ("Wrong Number", "failure", 10),
    ("Do Not Call", "failure", 5),
];
const EN_LINES: &[(&str, &str)] = &[
    (
        "assistant",
        "Hello {name}, this is Maya calling about your insurance enquiry.",
    ),
    ("user", "Yes, tell me."),
    (
        "assistant",
        "We have a plan that covers your whole family. Would you like to hear about it?",
    ),
    ("user", "What would it cost per month?"),
    (
        "assistant",
        "It starts at 799 rupees a month. I can have an expert call you with the details.",
    ),
    ("user", "Okay, that sounds fine."),
    (
        "assistant",
        "When would be a good time for the expert to call?",
    ),
    ("user", "This evening after six."),
];
const HI_LINES: &[(&str, &str)] = &[
    (
        "assistant",
        "हैलो {name} जी, मैं माया बोल रही हूँ, आपकी बीमा पूछताछ के बारे में।",
    ),
    ("user", "बोलिए।"),
    (
        "assistant",
        "हमारे पास एक प्लान है जो आपके पूरे परिवार को कवर करता है। क्या आप सुनना चाहेंगे?",
    ),
    ("user", "महीने का कितना लगेगा?"),
    (
        "assistant",
        "यह 799 रुपये महीने से शुरू होता है। मैं एक्सपर्ट से आपको कॉल करवा सकती हूँ।",
    ),
    ("user", "ठीक है।"),
    ("assistant", "एक्सपर्ट किस समय कॉल करें?"),
    ("user", "आज शाम छह बजे के बाद।"),
];

/// New leads per day in data sets bigger than a month's worth.
const LEADS_PER_DAY: i64 = 1_000;

/// Epoch ms of 2026-01-01T00:00:00Z, where generated time starts.
const START_MS: i64 = 1_767_225_600_000;

/// All payloads for `leads` leads, one JSON document per element, in
/// time from 2026-01-01 (the same data for the same arguments).
pub fn generate(leads: usize, seed: u64) -> Vec<String> {
    generate_from(leads, seed, START_MS)
}

/// Like [`generate`], with time starting at `start_ms` (epoch ms).
pub fn generate_from(leads: usize, seed: u64, start_ms: i64) -> Vec<String> {
    generate_until(leads, seed, start_ms, i64::MAX)
}

/// Like [`generate_from`], without the calls back that would come after
/// `until_ms` (their callbacks stay to be made: due, or still ahead).
pub fn generate_until(leads: usize, seed: u64, start_ms: i64, until_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    let _ = write_to(leads, seed, start_ms, until_ms, &mut |line: String| {
        out.push(line);
        Ok(())
    });
    out
}

/// Write `leads` leads' payloads as NDJSON.
pub fn write_ndjson(leads: usize, seed: u64, out: &mut impl Write) -> std::io::Result<u64> {
    write_to(leads, seed, START_MS, i64::MAX, &mut |line: String| {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")
    })
}

fn write_to(
    leads: usize,
    seed: u64,
    start_ms: i64,
    until: i64,
    emit: &mut dyn FnMut(String) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Deliveries wait in a small pool and leave it in random order, so leads
    // interleave and some of a lead's payloads arrive before older ones.
    let mut pool: Vec<String> = Vec::new();
    let mut written = 0_u64;
    // Leads start one after another, so the stream runs roughly forward in
    // time, as the platform's does: over 30 days, or at 1,000 new leads a
    // day when there are more (a bigger data set covers a longer period,
    // as a real one would, rather than crowding more calls into a month).
    let days = (leads as i64 / LEADS_PER_DAY).max(30);
    let spacing = days * 86_400_000 / leads.max(1) as i64;
    for i in 0..leads {
        let start = start_ms + i as i64 * spacing + rng.random_range(0..=spacing.max(1));
        for payload in lead_payloads(&mut rng, start, until) {
            let line = payload.to_string();
            if rng.random_bool(0.03) {
                pool.push(line.clone()); // a retry: the same body again
            }
            pool.push(line);
            while pool.len() > 24 {
                let i = rng.random_range(0..pool.len().min(6));
                emit(pool.remove(i))?;
                written += 1;
            }
        }
    }
    for line in pool {
        emit(line)?;
        written += 1;
    }
    Ok(written)
}

fn object_id(rng: &mut StdRng) -> String {
    (0..24)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A MongoDB ObjectId as the platform makes them: creation time in seconds
/// (8 hex digits), then 16 random hex digits.
fn object_id_at(rng: &mut StdRng, ms: i64) -> String {
    let mut id = format!("{:08x}", (ms / 1000).clamp(0, u32::MAX as i64));
    id.push_str(&object_id(rng)[..16]);
    id
}

/// Each project's offset from UTC in minutes (where its leads live): the
/// payloads show it in their local `currentDate` / `currentDayTime`.
const PROJECT_OFFSETS: &[i32] = &[330, 330, 0, 240];

/// What happens to a promised callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Called back around the promised moment.
    OnTime,
    /// Called back hours after it.
    Late,
    /// Called again before it, and a new moment agreed.
    Superseded,
    /// Never called back.
    Missed,
}

/// The same lead's facts, shared by its payloads.
struct LeadFacts<'a> {
    lead_id: String,
    project: &'a str,
    offset: i32,
    process: &'a str,
    reference: String,
    name: &'a str,
    hindi: bool,
    flow: String,
    last_activity: Option<String>,
    summary_lines: Vec<String>,
}

/// A connected call's outcome, and the moment (UTC ms) it promised to
/// call back, if it did.
struct Outcome<'a> {
    disposition: &'a str,
    dtype: &'a str,
    promise: Option<i64>,
}

fn lead_payloads(rng: &mut StdRng, start: i64, until: i64) -> Vec<Value> {
    let project_index = rng.random_range(0..PROJECTS.len());
    let mut lead = LeadFacts {
        lead_id: object_id_at(rng, start),
        project: PROJECTS[project_index],
        offset: PROJECT_OFFSETS[project_index],
        process: PROCESSES.choose(rng).unwrap_or(&PROCESSES[0]),
        reference: format!("AB{:09}", rng.random_range(0..1_000_000_000_u64)),
        name: NAMES.choose(rng).unwrap_or(&NAMES[0]),
        hindi: rng.random_bool(0.4),
        flow: object_id(rng),
        last_activity: None,
        summary_lines: Vec::new(),
    };
    let mut t = start;
    let attempts = rng.random_range(1..=4);
    let mut payloads = Vec::new();
    let mut promised: Option<(i64, i64)> = None;
    for attempt in 1..=attempts {
        let scheduled = t;
        t += rng.random_range(60_000..600_000);
        let roll = rng.random_range(0..100);
        let call_status = if attempt == attempts || roll >= 60 {
            "completed"
        } else if roll < 30 {
            "busy"
        } else {
            "no-answer"
        };
        let outcome = if call_status == "completed" {
            let mut pick = rng.random_range(0..100);
            let mut chosen = OUTCOMES[0];
            for outcome in OUTCOMES {
                if pick < outcome.2 {
                    chosen = *outcome;
                    break;
                }
                pick -= outcome.2;
            }
            let promise = matches!(chosen.0, "Interested" | "Callback Requested")
                .then(|| callback_moment(rng, t, lead.offset));
            Some(Outcome {
                disposition: chosen.0,
                dtype: chosen.1,
                promise,
            })
        } else {
            None
        };
        if let Some(due) = outcome.as_ref().and_then(|o| o.promise) {
            promised = Some((t, due));
        }
        let connected = outcome.is_some();
        payloads.extend(call(
            rng,
            &mut lead,
            attempt,
            scheduled,
            t,
            call_status,
            outcome,
        ));
        if connected {
            break;
        }
        // The platform schedules the next attempt.
        t += rng.random_range(30_000..120_000);
        let schedule_id = object_id_at(rng, t);
        let from = format!("schedule_call_{}", attempt + 1);
        payloads.push(json!({
            "action_type": "update", "activityId": schedule_id, "leadId": lead.lead_id, "lastActivityId": lead.last_activity,
            "processId": lead.process, "referenceId": lead.reference, "timestamp": t,
            "activity": {"type": "schedule", "status": "success", "fromState": from, "toState": format!("make_call_{}", attempt + 1), "scheduledAt": t + 3_600_000},
            "leadDisposition": "Attempted",
        }));
        lead.last_activity = Some(schedule_id);
        t += rng.random_range(3_600_000..6 * 3_600_000);
    }
    // A promised callback: honoured on time or late, superseded by a new
    // moment agreed in an earlier call, or missed. Calls after `until`
    // have not happened yet.
    let mut attempt = attempts + 1;
    let mut second_promise = false;
    while let Some((made, due)) = promised.take() {
        let roll = rng.random_range(0..100);
        let fate = match roll {
            0..45 => Fate::OnTime,
            45..60 => Fate::Late,
            60..75 if !second_promise => Fate::Superseded,
            _ => Fate::Missed,
        };
        let at = match fate {
            Fate::OnTime => due + rng.random_range(-10 * 60_000..10 * 60_000),
            Fate::Late => due + rng.random_range(3_600_000..20 * 3_600_000),
            Fate::Superseded => made + (due - made) / 3,
            Fate::Missed => continue,
        };
        if at > until {
            break;
        }
        let outcome = if fate == Fate::Superseded {
            second_promise = true;
            let again = callback_moment(rng, due, lead.offset);
            promised = Some((at, again));
            Outcome {
                disposition: "Callback Requested",
                dtype: "neutral",
                promise: Some(again),
            }
        } else if rng.random_bool(0.5) {
            Outcome {
                disposition: "Interested",
                dtype: "positive",
                promise: None,
            }
        } else {
            Outcome {
                disposition: "Not Interested",
                dtype: "failure",
                promise: None,
            }
        };
        payloads.extend(call(
            rng,
            &mut lead,
            attempt,
            at - 120_000,
            at,
            "completed",
            Some(outcome),
        ));
        attempt += 1;
    }
    if rng.random_bool(0.1) {
        let ok = rng.random_bool(0.8);
        payloads.push(json!({
            "action_type": "update", "updateId": object_id_at(rng, t), "success": ok,
            "error": if ok { Value::Null } else { json!("Lead is locked by another process") },
            "leadId": lead.lead_id, "referenceId": lead.reference, "timestamp": t + 60_000,
            "data": if ok { json!({"status": "synced"}) } else { Value::Null },
        }));
    }
    payloads
}

/// A moment to call back, promised in a call at `t`: two to thirty hours
/// later, on the half hour of the lead's local time (UTC ms).
fn callback_moment(rng: &mut StdRng, t: i64, offset: i32) -> i64 {
    const HALF_HOUR: i64 = 1_800_000;
    let local = t + offset as i64 * 60_000 + rng.random_range(2 * 3_600_000..30 * 3_600_000);
    local / HALF_HOUR * HALF_HOUR - offset as i64 * 60_000
}

/// How the agent writes a promised moment, in the lead's local time:
/// mostly the platform's DD/MM/YYYY and HH:mm, sometimes 12-hour or ISO,
/// and now and then text no one can read.
fn promise_text(rng: &mut StdRng, due: i64, offset: i32) -> (String, String) {
    let local = chrono::DateTime::from_timestamp_millis(due + offset as i64 * 60_000)
        .unwrap_or_default()
        .naive_utc();
    match rng.random_range(0..100) {
        0..5 => (
            "tomorrow".to_string(),
            (*["after lunch", "evening", "sometime"]
                .choose(rng)
                .unwrap_or(&"evening"))
            .to_string(),
        ),
        5..15 => (
            local.format("%d/%m/%Y").to_string(),
            local.format("%-I:%M %p").to_string(),
        ),
        15..20 => (
            local.format("%Y-%m-%d").to_string(),
            local.format("%H:%M").to_string(),
        ),
        _ => (
            local.format("%d/%m/%Y").to_string(),
            local.format("%H:%M").to_string(),
        ),
    }
}

/// The local `currentDate` / `currentDayTime` of UTC moment `ms`.
fn local_now(ms: i64, offset: i32) -> (String, String) {
    let local = chrono::DateTime::from_timestamp_millis(ms + offset as i64 * 60_000)
        .unwrap_or_default()
        .naive_utc();
    (
        local.format("%B %d, %Y").to_string(),
        local.format("%A %H:%M").to_string(),
    )
}

/// One call attempt of `lead` scheduled at `scheduled` and ending at `t`:
/// its payload (after, sometimes, a first version delivered late). A
/// connected call (`outcome`) has a transcript, tool calls (a promised
/// callback among them), variables and an analysis.
fn call(
    rng: &mut StdRng,
    lead: &mut LeadFacts,
    attempt: u32,
    scheduled: i64,
    t: i64,
    call_status: &str,
    outcome: Option<Outcome>,
) -> Vec<Value> {
    let mut payloads = Vec::new();
    let activity_id = object_id_at(rng, t);
    let connected = outcome.is_some();
    let (disposition, dtype) = outcome
        .as_ref()
        .map_or(("Attempted", "neutral"), |o| (o.disposition, o.dtype));
    let to_state = if connected {
        disposition.to_lowercase().replace(' ', "_")
    } else {
        format!("schedule_call_{}", attempt + 1)
    };
    let summary = if connected {
        format!("Customer spoke with the agent; outcome: {disposition}.")
    } else {
        format!("Agent called the lead but no conversation took place because the line was {call_status}.")
    };
    lead.summary_lines.push(format!("- call: {summary}"));
    let (current_date, current_day_time) = local_now(scheduled, lead.offset);
    let input = json!({
        "make_call": "yes", "circle": CIRCLES.choose(rng), "called": true, "connected": connected,
        "name": lead.name, "leadId": lead.lead_id, "projectId": lead.project, "referenceId": lead.reference,
        "scheduledTime": scheduled, "schedulingMethod": "standard",
        "currentDate": current_date, "currentDayTime": current_day_time,
    });
    let mut result = json!({
        "success": true, "type": "call", "leadId": lead.lead_id, "projectId": lead.project, "activityId": activity_id,
        "referenceId": lead.reference, "flowId": lead.flow, "channelId": rng.random_range(1..64), "hasTransfer": false,
        "telephonyType": "provider", "input": input, "wsId": rng.random_range(1..200), "callRequest": {},
        "providerCallId": object_id(rng), "callMetadata": {}, "status": "completed",
        "callStatus": call_status, "nextState": to_state,
    });
    if let Some(outcome) = &outcome {
        let lines = if lead.hindi { HI_LINES } else { EN_LINES };
        let count = rng.random_range(4..=lines.len());
        let mut mt = t - 120_000;
        let messages: Vec<Value> = lines[..count]
            .iter()
            .map(|(role, text)| {
                mt += rng.random_range(2_000..9_000);
                json!({"role": role, "content": text.replace("{name}", lead.name), "timestamp": mt})
            })
            .collect();
        let mut tool_calls = Vec::new();
        let promise = outcome
            .promise
            .map(|due| promise_text(rng, due, lead.offset));
        if let Some((date, time)) = &promise {
            tool_calls.push(json!({
                "tool_call_id": format!("call_{}", &object_id(rng)[..16]), "name": "scheduleExpertCallback",
                "arguments": {"callbackDate": date, "callbackTime": time},
                "response": {"success": true, "callbackDate": date, "callbackTime": time},
                "utteranceId": count.to_string(), "timestamp": mt + 1_000,
            }));
        }
        tool_calls.push(json!({
            "tool_call_id": format!("call_{}", &object_id(rng)[..16]), "name": "endCall",
            "arguments": {"endCall": true}, "response": {"success": true, "endCall": true},
            "utteranceId": count.to_string(), "timestamp": mt + 2_000,
        }));
        let urgency = if disposition == "Interested" {
            *["Very Urgent", "Urgent", "Normal"]
                .choose(rng)
                .unwrap_or(&"Normal")
        } else {
            "None"
        };
        let started = t - 120_000;
        let (current_date, current_day_time) = local_now(started, lead.offset);
        result["conversationId"] = json!(object_id_at(rng, t));
        result["conversation"] = json!({
            "projectId": lead.project, "flowId": lead.flow, "streamId": object_id(rng), "callSid": object_id(rng),
            "phoneHash": format!("{}{}", object_id(rng), object_id(rng)), "leadId": lead.lead_id,
            "messages": messages, "toolCalls": tool_calls,
            "createdAt": rfc3339(started), "updatedAt": rfc3339(mt + 3_000),
            "reconciled": true, "turnCount": count * 2,
        });
        let mut variables = json!({
            "inferredLanguage": if lead.hindi { "hi" } else { "en" }, "Urgency": urgency,
            "expertCallbackRequested": promise.is_some(), "circle": input_circle(&result),
            "currentDate": current_date, "currentDayTime": current_day_time,
        });
        if let Some((date, time)) = &promise {
            variables["callbackDate"] = json!(date);
            variables["callbackTime"] = json!(time);
            variables["Followup_time"] = json!(format!("{date} {time}"));
        }
        result["variables"] = json!({
            "flowId": lead.flow, "projectId": lead.project, "createdAt": rfc3339(started),
            "variables": variables,
        });
    }
    if connected || rng.random_bool(0.95) {
        result["analysis"] = json!({
            "success": connected, "disposition": disposition, "dispositionType": dtype,
            "summary": summary, "timestamp": t - 200,
        });
    }
    if rng.random_bool(0.2) {
        // The platform's first version of the attempt, superseded by the
        // result below; delivered late, it is stale.
        payloads.push(json!({
            "action_type": "create", "activityId": activity_id, "leadId": lead.lead_id,
            "lastActivityId": lead.last_activity, "processId": lead.process, "referenceId": lead.reference, "timestamp": scheduled,
            "activity": {"type": "call", "status": "pending", "fromState": format!("make_call_{attempt}"), "toState": format!("make_call_{attempt}"), "scheduledAt": scheduled},
        }));
    }
    payloads.push(json!({
        "action_type": "update", "activityId": activity_id, "leadId": lead.lead_id,
        "lastActivityId": lead.last_activity, "processId": lead.process, "referenceId": lead.reference, "timestamp": t,
        "activity": {
            "type": "call", "status": "success", "fromState": format!("make_call_{attempt}"), "toState": to_state,
            "scheduledAt": scheduled,
            "metadata": {"attemptLogId": object_id(rng), "attemptNumber": attempt, "isConnected": connected},
            "result": result,
        },
        "leadSummary": format!("Lead Details: Contacting {}.\nActivities:\n{}", lead.name, lead.summary_lines.join("\n")),
        "leadDisposition": disposition,
    }));
    lead.last_activity = Some(activity_id);
    payloads
}

fn input_circle(result: &Value) -> Value {
    result["input"]["circle"].clone()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::payload::parse;

    #[test]
    fn same_seed_same_stream_and_every_payload_parses() {
        let a = generate(50, 1);
        assert_eq!(a, generate(50, 1));
        assert_ne!(a, generate(50, 2));
        for body in &a {
            parse(body.as_bytes()).unwrap();
        }
        let text = a.join("\n");
        for needle in [
            "\"busy\"",
            "\"no-answer\"",
            "scheduleExpertCallback",
            "endCall",
            "बोलिए",
            "\"schedule\"",
            "updateId",
            "\"create\"",
        ] {
            assert!(text.contains(needle), "no {needle} in 50 generated leads");
        }
        let unique: std::collections::HashSet<_> = a.iter().collect();
        assert!(unique.len() < a.len(), "some deliveries are repeated");
    }
}
