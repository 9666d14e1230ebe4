//! An activity payload's rows: the activity, its conversation (messages,
//! tool calls), analysis and extracted variables.

use super::fields::Fields;
use super::parts::{extracted_variables, message_row, tool_call_row};
use super::ActivityRows;
use entity::{activity, analysis, conversation, message, tool_call};
use serde_json::{Map, Value};

/// The rows of one activity payload, in steps that each take their part
/// of the payload out of `top` (what no step takes is kept in `extra`).
pub(super) fn activity_rows(
    activity_id: &str,
    lead_id: &str,
    timestamp: i64,
    body_hash: &str,
    top: &mut Fields,
) -> ActivityRows {
    let mut a = blank_activity(activity_id, lead_id, timestamp, body_hash);
    take_identity(top, &mut a);
    let mut act = top.object("activity").unwrap_or_default();
    take_call(&mut act, &mut a);
    let mut result = act.object("result").unwrap_or_default();
    take_result(&mut result, &mut a);
    let conversation_fields = result
        .object("conversation")
        .or_else(|| act.object("conversation"));
    let analysis = result
        .object("analysis")
        .or_else(|| act.object("analysis"))
        .map(|fields| analysis_row(fields, &a));
    let (conversation, messages, tool_calls) = match conversation_fields {
        Some(fields) => {
            let (c, m, t) = conversation_rows(fields, &mut a);
            (Some(c), m, t)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    if let Some(analysis) = &analysis {
        a.analysis_disposition = analysis.disposition.clone();
        a.analysis_disposition_type = analysis.disposition_type.clone();
        a.analysis_summary = analysis.summary.clone();
    }
    a.has_conversation = conversation.is_some();
    a.extra = leftovers(top, act, result);
    let variables = extracted_variables(activity_id, lead_id, &a.project_id, a.variables.as_ref());
    // Conversations and analyses may name the project where the result did not.
    let project_id = a.project_id.clone();
    ActivityRows {
        analysis: analysis.map(|x| analysis::Model {
            project_id: project_id.clone(),
            ..x
        }),
        conversation: conversation.map(|c| conversation::Model {
            project_id: project_id.clone(),
            ..c
        }),
        activity: a,
        messages,
        tool_calls,
        variables,
    }
}

/// An activity with its identity and nothing else yet.
fn blank_activity(id: &str, lead_id: &str, timestamp: i64, body_hash: &str) -> activity::Model {
    activity::Model {
        id: id.to_string(),
        lead_id: lead_id.to_string(),
        timestamp,
        version_hash: body_hash.to_string(),
        action_type: None,
        r#type: None,
        status: None,
        from_state: None,
        to_state: None,
        next_state: None,
        scheduled_at: None,
        call_status: None,
        result_status: None,
        result_success: None,
        attempt_number: None,
        attempt_log_id: None,
        is_connected: None,
        channel_id: None,
        ws_id: None,
        telephony_type: None,
        has_transfer: None,
        flow_id: None,
        project_id: None,
        process_id: None,
        reference_id: None,
        last_activity_id: None,
        conversation_id: None,
        provider_call_id: None,
        lead_name: None,
        lead_summary: None,
        lead_disposition: None,
        analysis_disposition: None,
        analysis_disposition_type: None,
        analysis_summary: None,
        has_conversation: false,
        language: None,
        callback_promised: false,
        callback_tool_call_id: None,
        callback_date: None,
        callback_time: None,
        callback_offset: None,
        input: None,
        variables: None,
        metadata: None,
        extra: None,
    }
}

/// The payload's top level: the lead's ids and the platform's view of it.
fn take_identity(top: &mut Fields, a: &mut activity::Model) {
    a.action_type = top.str("action_type");
    a.last_activity_id = top.str("lastActivityId");
    a.process_id = top.str("processId");
    a.reference_id = top.str("referenceId");
    a.project_id = top.str("projectId");
    a.lead_summary = top.str("leadSummary");
    a.lead_disposition = top.str("leadDisposition");
}

/// `activity`: its type, status, states, schedule and metadata.
fn take_call(act: &mut Fields, a: &mut activity::Model) {
    a.r#type = act.str("type");
    a.status = act.str("status");
    a.from_state = act.str("fromState");
    a.to_state = act.str("toState");
    a.scheduled_at = act.time("scheduledAt");
    match act.object("metadata") {
        Some(mut meta) => {
            a.metadata = Some(Value::Object(meta.0.clone()));
            a.attempt_log_id = meta.str("attemptLogId");
            a.attempt_number = meta.int32("attemptNumber");
            a.is_connected = meta.bool("isConnected");
        }
        None => a.metadata = act.json("metadata"),
    }
}

/// `activity.result`: the call's outcome and where it ran. Ids it repeats
/// are dropped; ids that disagree with the top level are kept in `extra`.
fn take_result(result: &mut Fields, a: &mut activity::Model) {
    a.result_success = result.bool("success");
    match (&a.r#type, result.str("type")) {
        (None, t) => a.r#type = t,
        // Keep a disagreeing result.type rather than drop it.
        (Some(known), Some(t)) if *known != t => {
            result.0.insert("type".into(), Value::String(t));
        }
        _ => {}
    }
    result.drop_if_equal("leadId", &a.lead_id);
    result.drop_if_equal("activityId", &a.id);
    if let Some(p) = result.str("projectId") {
        a.project_id.get_or_insert(p);
    }
    match (&a.reference_id, result.str("referenceId")) {
        (None, Some(r)) => a.reference_id = Some(r),
        (Some(known), Some(r)) if *known != r => {
            result.0.insert("referenceId".into(), Value::String(r));
        }
        _ => {}
    }
    if a.process_id.is_none() {
        a.process_id = result.str("processId");
    }
    a.flow_id = result.str("flowId");
    a.channel_id = result.int("channelId");
    a.has_transfer = result.bool("hasTransfer");
    a.telephony_type = result.str("telephonyType");
    a.input = result.json("input");
    a.ws_id = result.int("wsId");
    a.provider_call_id = result.str("providerCallId");
    a.conversation_id = result.str("conversationId");
    a.result_status = result.str("status");
    a.call_status = result.str("callStatus");
    a.next_state = result.str("nextState");
    a.variables = result.json("variables");
    a.language = a
        .variables
        .as_ref()
        .and_then(|v| v.get("variables"))
        .and_then(|v| v.get("inferredLanguage"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let input = |key: &str| {
        a.input
            .as_ref()
            .and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    a.lead_name = input("name");
    if a.project_id.is_none() {
        a.project_id = input("projectId");
    }
}

/// `analysis`: the platform's judgement of the call.
fn analysis_row(mut f: Fields, a: &activity::Model) -> analysis::Model {
    analysis::Model {
        activity_id: a.id.clone(),
        lead_id: a.lead_id.clone(),
        project_id: a.project_id.clone(),
        success: f.bool("success"),
        disposition: f.str("disposition"),
        disposition_type: f.str("dispositionType"),
        summary: f.str("summary"),
        timestamp: f.time("timestamp"),
        activity_timestamp: a.timestamp,
        extra: f.rest(),
    }
}

/// `conversation`: the transcript, its messages and tool calls. A project
/// named here and nowhere before becomes the activity's.
fn conversation_rows(
    mut c: Fields,
    a: &mut activity::Model,
) -> (
    conversation::Model,
    Vec<message::Model>,
    Vec<tool_call::Model>,
) {
    c.drop_if_equal("leadId", &a.lead_id);
    if let Some(p) = c.str("projectId") {
        match &a.project_id {
            None => a.project_id = Some(p),
            Some(known) if *known != p => {
                c.0.insert("projectId".into(), Value::String(p));
            }
            _ => {}
        }
    }
    let messages = c
        .array("messages")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(position, item)| message_row(&a.id, &a.lead_id, position, item))
        .collect();
    let tool_calls = c
        .array("toolCalls")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(position, item)| tool_call_row(&a.id, &a.lead_id, &a.project_id, position, item))
        .collect();
    let conversation = conversation::Model {
        activity_id: a.id.clone(),
        lead_id: a.lead_id.clone(),
        conversation_id: a.conversation_id.clone(),
        project_id: a.project_id.clone(),
        flow_id: c.str("flowId"),
        stream_id: c.str("streamId"),
        call_sid: c.str("callSid"),
        phone_hash: c.str("phoneHash"),
        turn_count: c.int32("turnCount"),
        reconciled: c.bool("reconciled"),
        created_at: c.time("createdAt"),
        updated_at: c.time("updatedAt"),
        timestamp: a.timestamp,
        extra: c.rest(),
    };
    (conversation, messages, tool_calls)
}

/// What no step took, by level (`result`, `activity`, `payload`).
fn leftovers(top: &mut Fields, act: Fields, result: Fields) -> Option<Value> {
    let mut extra = Map::new();
    let top_rest = std::mem::take(top).rest();
    for (level, rest) in [
        ("result", result.rest()),
        ("activity", act.rest()),
        ("payload", top_rest),
    ] {
        if let Some(rest) = rest {
            extra.insert(level.to_string(), rest);
        }
    }
    (!extra.is_empty()).then_some(Value::Object(extra))
}
