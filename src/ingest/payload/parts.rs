//! The smaller rows of a payload: transcript messages, tool calls,
//! extracted variables, and update results.

use super::fields::Fields;
use entity::{lead_update, message, tool_call, variable};
use serde_json::{Map, Value};

pub(super) fn message_row(
    activity_id: &str,
    lead_id: &str,
    position: usize,
    item: Value,
) -> message::Model {
    let position = i32::try_from(position).unwrap_or(i32::MAX);
    let mut m = match item {
        Value::Object(map) => Fields(map),
        other => {
            return message::Model {
                activity_id: activity_id.to_string(),
                position,
                lead_id: lead_id.to_string(),
                role: String::new(),
                content: json_text(&other),
                timestamp: None,
                extra: Some(serde_json::json!({ "raw": other })),
            }
        }
    };
    let role = m.str("role").unwrap_or_default();
    let content = match m.str("content") {
        Some(s) => s,
        None => m.0.get("content").map(json_text).unwrap_or_default(),
    };
    message::Model {
        activity_id: activity_id.to_string(),
        position,
        lead_id: lead_id.to_string(),
        role,
        content,
        timestamp: m.time("timestamp"),
        extra: m.rest(),
    }
}

pub(super) fn tool_call_row(
    activity_id: &str,
    lead_id: &str,
    project_id: &Option<String>,
    position: usize,
    item: Value,
) -> tool_call::Model {
    let position = i32::try_from(position).unwrap_or(i32::MAX);
    let mut t = match item {
        Value::Object(map) => Fields(map),
        other => Fields(Map::from_iter([("raw".to_string(), other)])),
    };
    let tool_call_id = t
        .str("tool_call_id")
        .or_else(|| t.str("toolCallId"))
        .or_else(|| t.str("id"));
    let name = t.str("name").unwrap_or_default();
    let arguments = t.json("arguments");
    let response = t.json("response");
    let success = response
        .as_ref()
        .and_then(|r| r.get("success"))
        .and_then(Value::as_bool);
    tool_call::Model {
        activity_id: activity_id.to_string(),
        position,
        lead_id: lead_id.to_string(),
        project_id: project_id.clone(),
        tool_call_id,
        name,
        arguments,
        response,
        success,
        utterance_id: t.str("utteranceId"),
        timestamp: t.time("timestamp"),
        extra: t.rest(),
    }
}

/// The variables a call extracted: `variables.variables` when the platform
/// nests them (as it does), else the `variables` object itself.
pub(super) fn extracted_variables(
    activity_id: &str,
    lead_id: &str,
    project_id: &Option<String>,
    variables: Option<&Value>,
) -> Vec<variable::Model> {
    let Some(Value::Object(outer)) = variables else {
        return Vec::new();
    };
    let map = match outer.get("variables") {
        Some(Value::Object(inner)) => inner,
        _ => outer,
    };
    map.iter()
        .map(|(name, value)| variable::Model {
            activity_id: activity_id.to_string(),
            name: name.clone(),
            lead_id: lead_id.to_string(),
            project_id: project_id.clone(),
            value_text: match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
            value: (!value.is_null()).then(|| value.clone()),
        })
        .collect()
}

pub(super) fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn update_row(
    update_id: &str,
    lead_id: &str,
    timestamp: i64,
    body_hash: &str,
    mut top: Fields,
) -> lead_update::Model {
    let error = match top.0.get("error") {
        Some(Value::String(_)) => top.str("error"),
        Some(Value::Null) | None => None,
        Some(other) => {
            let text = other.to_string();
            top.0.remove("error");
            Some(text)
        }
    };
    lead_update::Model {
        id: update_id.to_string(),
        lead_id: lead_id.to_string(),
        timestamp,
        version_hash: body_hash.to_string(),
        action_type: top.str("action_type"),
        success: top.bool("success"),
        error,
        reference_id: top.str("referenceId"),
        data: top.json("data"),
        extra: top.rest(),
    }
}
