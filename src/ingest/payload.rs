//! Parsing a webhook body into a [`Delivery`]: identity fields checked
//! strictly, everything else read tolerantly.
//!
//! Only `activityId` (or `updateId`), `leadId` and `timestamp` are required.
//! Every other field may be missing, null, or of an unexpected type; a field
//! that cannot be read into its column is kept in an `extra` JSON column, so
//! nothing the platform sent is dropped (the raw body is kept as well).

use entity::{activity, analysis, conversation, lead_update, message, tool_call, variable};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Which of the platform's two payload shapes a delivery has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An activity payload (`activityId`).
    Activity,
    /// The result of an asynchronous "update lead" call (`updateId`).
    Update,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Activity => "activity",
            Kind::Update => "update",
        }
    }
}

/// A parsed delivery, ready to store.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub kind: Kind,
    /// `activityId` or `updateId`.
    pub source_id: String,
    pub lead_id: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// The body exactly as received.
    pub body: String,
    /// SHA-256 (hex) of the canonical JSON form of the body.
    pub body_hash: String,
    pub projection: Projection,
}

/// The rows one delivery projects into.
#[derive(Clone, Debug)]
pub enum Projection {
    Activity(Box<ActivityRows>),
    Update(Box<lead_update::Model>),
}

/// An activity and its parts.
#[derive(Clone, Debug)]
pub struct ActivityRows {
    pub activity: activity::Model,
    pub conversation: Option<conversation::Model>,
    pub messages: Vec<message::Model>,
    pub tool_calls: Vec<tool_call::Model>,
    pub analysis: Option<analysis::Model>,
    pub variables: Vec<variable::Model>,
}

/// Why a body was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not JSON at all (HTTP 400).
    Malformed {
        message: String,
        line: usize,
        column: usize,
    },
    /// JSON, but without the identity fields or with a wrong type there (HTTP 422).
    Invalid { message: String },
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed { .. } => "malformed_json",
            Rejection::Invalid { .. } => "invalid_payload",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Rejection::Malformed { message, .. } | Rejection::Invalid { message } => message,
        }
    }
}

/// Earliest and latest instants a `DateTime` can represent (years 1..=9999).
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// Parse one webhook body.
pub fn parse(body: &[u8]) -> Result<Delivery, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Rejection::Malformed {
        message: format!("malformed JSON: {e}"),
        line: e.line(),
        column: e.column(),
    })?;
    // serde_json accepted it, so it is UTF-8; keep the exact bytes as text.
    let body = String::from_utf8(body.to_vec()).map_err(|e| Rejection::Malformed {
        message: format!("body is not UTF-8: {e}"),
        line: 1,
        column: e.utf8_error().valid_up_to() + 1,
    })?;
    let body_hash = canonical_hash(&value);
    let Value::Object(mut top) = sanitize(value) else {
        return Err(Rejection::Invalid {
            message: "expected a JSON object with activityId (or updateId), leadId and timestamp"
                .into(),
        });
    };

    let kind = if top.get("activityId").is_some_and(|v| !v.is_null()) {
        Kind::Activity
    } else if top.get("updateId").is_some_and(|v| !v.is_null()) {
        Kind::Update
    } else {
        return Err(Rejection::Invalid {
            message: "missing activityId (activity payloads) or updateId (update-lead results)"
                .into(),
        });
    };
    let id_field = match kind {
        Kind::Activity => "activityId",
        Kind::Update => "updateId",
    };
    let source_id = identity_id(&mut top, id_field)?;
    let lead_id = identity_id(&mut top, "leadId")?;
    let timestamp = identity_time(&mut top, "timestamp")?;

    let mut fields = Fields(top);
    let projection = match kind {
        Kind::Activity => Projection::Activity(Box::new(activity_rows(
            &source_id,
            &lead_id,
            timestamp,
            &body_hash,
            &mut fields,
        ))),
        Kind::Update => Projection::Update(Box::new(update_row(
            &source_id, &lead_id, timestamp, &body_hash, fields,
        ))),
    };
    Ok(Delivery {
        kind,
        source_id,
        lead_id,
        timestamp,
        body,
        body_hash,
        projection,
    })
}

fn identity_id(top: &mut Map<String, Value>, field: &str) -> Result<String, Rejection> {
    match top.remove(field) {
        None | Some(Value::Null) => Err(Rejection::Invalid {
            message: format!("missing {field}"),
        }),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Rejection::Invalid {
            message: format!("{field} is empty"),
        }),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(Rejection::Invalid {
            message: format!("{field} must be a string, got {}", type_name(&other)),
        }),
    }
}

fn identity_time(top: &mut Map<String, Value>, field: &str) -> Result<i64, Rejection> {
    match top.remove(field) {
        None | Some(Value::Null) => Err(Rejection::Invalid {
            message: format!("missing {field}"),
        }),
        Some(value) => epoch_ms(&value).ok_or_else(|| Rejection::Invalid {
            message: format!(
                "{field} must be epoch milliseconds (a number) or an RFC 3339 string, got {}",
                match &value {
                    Value::String(s) => format!("the string {:?}", truncate(s, 40)),
                    other => type_name(other).to_string(),
                }
            ),
        }),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Epoch milliseconds from a number, a numeric string or an RFC 3339 string.
pub fn epoch_ms(value: &Value) -> Option<i64> {
    let ms = match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => {
                let f = n.as_f64()?;
                if !f.is_finite() || f < MIN_MS as f64 || f > MAX_MS as f64 {
                    return None;
                }
                f as i64
            }
        },
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                i
            } else {
                chrono::DateTime::parse_from_rfc3339(s)
                    .ok()?
                    .timestamp_millis()
            }
        }
        _ => return None,
    };
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// SHA-256 of the body's canonical JSON (object keys sorted, no whitespace),
/// so a retry that re-serialises the same payload is still a duplicate.
pub fn canonical_hash(value: &Value) -> String {
    let mut out = Vec::with_capacity(4096);
    write_canonical(value, &mut out);
    hex::encode(Sha256::digest(&out))
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Serialising a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_canonical(val, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// Replace NUL characters, which PostgreSQL cannot store in text or JSONB,
/// so both databases hold the same projection. The raw body keeps them.
fn sanitize(value: Value) -> Value {
    fn clean(s: String) -> String {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s
        }
    }
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(sanitize).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (clean(k), sanitize(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The fields of one JSON object not yet read into a column. Each accessor
/// takes a field only when it has the expected type; whatever is left at the
/// end goes to an `extra` column.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn take_if<T>(&mut self, key: &str, read: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let value = self.0.get(key)?;
        if value.is_null() {
            self.0.remove(key);
            return None;
        }
        let read = read(value)?;
        self.0.remove(key);
        Some(read)
    }

    fn str(&mut self, key: &str) -> Option<String> {
        match self.0.get(key) {
            Some(Value::String(_)) => match self.0.remove(key) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            Some(Value::Number(n)) => {
                let s = n.to_string();
                self.0.remove(key);
                Some(s)
            }
            Some(Value::Null) => {
                self.0.remove(key);
                None
            }
            _ => None,
        }
    }

    fn int(&mut self, key: &str) -> Option<i64> {
        self.take_if(key, |v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    fn int32(&mut self, key: &str) -> Option<i32> {
        self.take_if(key, |v| match v {
            Value::Number(n) => n.as_i64().and_then(|i| i32::try_from(i).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        self.take_if(key, |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    }

    fn time(&mut self, key: &str) -> Option<i64> {
        self.take_if(key, epoch_ms)
    }

    /// Any non-null value, as it is.
    fn json(&mut self, key: &str) -> Option<Value> {
        match self.0.remove(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn object(&mut self, key: &str) -> Option<Fields> {
        match self.0.get(key) {
            Some(Value::Object(_)) => match self.0.remove(key) {
                Some(Value::Object(map)) => Some(Fields(map)),
                _ => None,
            },
            Some(Value::Null) => {
                self.0.remove(key);
                None
            }
            _ => None,
        }
    }

    fn array(&mut self, key: &str) -> Option<Vec<Value>> {
        match self.0.get(key) {
            Some(Value::Array(_)) => match self.0.remove(key) {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            },
            Some(Value::Null) => {
                self.0.remove(key);
                None
            }
            _ => None,
        }
    }

    /// Take a field that repeats a value already known (e.g. `result.leadId`);
    /// it stays in `extra` only if it disagrees.
    fn drop_if_equal(&mut self, key: &str, known: &str) {
        if self.0.get(key).and_then(Value::as_str) == Some(known) {
            self.0.remove(key);
        }
    }

    fn rest(self) -> Option<Value> {
        (!self.0.is_empty()).then_some(Value::Object(self.0))
    }
}

/// The rows of one activity payload, in steps that each take their part
/// of the payload out of `top` (what no step takes is kept in `extra`).
fn activity_rows(
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

fn message_row(activity_id: &str, lead_id: &str, position: usize, item: Value) -> message::Model {
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

fn tool_call_row(
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
fn extracted_variables(
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

fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn update_row(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn connected_seed_reads_every_part() {
        let d = parse(&seed("connected-interested.json")).unwrap();
        assert_eq!(d.kind, Kind::Activity);
        assert_eq!(d.source_id, "6966179xxxxxxxxxxaf8ef");
        assert_eq!(d.timestamp, 1_768_299_801_851);
        let Projection::Activity(rows) = d.projection else {
            panic!("not an activity")
        };
        let a = &rows.activity;
        assert_eq!(a.to_state.as_deref(), Some("interested"));
        assert_eq!(a.attempt_number, Some(2));
        assert_eq!(a.is_connected, Some(true));
        assert_eq!(a.channel_id, Some(43));
        assert_eq!(a.flow_id.as_deref(), Some("6953d4fxxxxxxxxxxc425"));
        assert_eq!(a.language.as_deref(), Some("hi"));
        assert_eq!(a.project_id.as_deref(), Some("681db2dxxxxxxxxxxxx120"));
        assert_eq!(a.lead_name.as_deref(), Some("John Doe"));
        assert_eq!(a.analysis_disposition_type.as_deref(), Some("positive"));
        let conv = rows.conversation.as_ref().unwrap();
        // The conversation's flowId differs from the result's: both are kept.
        assert_eq!(conv.flow_id.as_deref(), Some("6953d4fxxxxxxxxxxc424"));
        assert_eq!(conv.turn_count, Some(15));
        assert_eq!(conv.created_at, Some(1_768_298_667_229));
        assert_eq!(rows.messages.len(), 2);
        assert_eq!(rows.messages[0].content, "हैलो John ji");
        assert_eq!(rows.tool_calls[0].name, "scheduleExpertCallback");
        assert_eq!(
            rows.tool_calls[0].arguments.as_ref().unwrap()["callbackTime"],
            "18:00"
        );
        assert_eq!(rows.tool_calls[1].success, Some(true));
        let urgency = rows.variables.iter().find(|v| v.name == "Urgency").unwrap();
        assert_eq!(urgency.value_text.as_deref(), Some("Very Urgent"));
        let requested = rows
            .variables
            .iter()
            .find(|v| v.name == "expertCallbackRequested")
            .unwrap();
        assert_eq!(requested.value_text.as_deref(), Some("true"));
        // callRequest / callMetadata have no column: they are kept in extra.
        let extra = a.extra.as_ref().unwrap();
        assert!(extra["result"].get("callRequest").is_some(), "{extra}");
    }

    #[test]
    fn identity_errors_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            (r#"[1,2]"#, "expected a JSON object"),
            (r#"{"leadId":"l","timestamp":1}"#, "missing activityId"),
            (r#"{"activityId":"a","timestamp":1}"#, "missing leadId"),
            (r#"{"activityId":"a","leadId":"l"}"#, "missing timestamp"),
            (
                r#"{"activityId":{},"leadId":"l","timestamp":1}"#,
                "activityId must be a string",
            ),
            (
                r#"{"activityId":"a","leadId":"l","timestamp":"soon"}"#,
                "timestamp must be epoch",
            ),
            (
                r#"{"activityId":"a","leadId":"l","timestamp":1e300}"#,
                "timestamp must be epoch",
            ),
            (
                r#"{"activityId":"","leadId":"l","timestamp":1}"#,
                "activityId is empty",
            ),
        ];
        for (body, expected) in cases {
            match parse(body.as_bytes()) {
                Err(Rejection::Invalid { message }) => {
                    assert!(message.contains(expected), "{body}: {message}")
                }
                other => panic!("{body}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        match parse(b"{\n  \"activityId\": \"a\",\n  oops\n}") {
            Err(Rejection::Malformed { line, column, .. }) => assert_eq!((line, column), (3, 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unexpected_types_are_kept_in_extra() {
        let body = br#"{"activityId":"a","leadId":"l","timestamp":"2026-01-01T00:00:00Z",
            "activity":{"type":"call","result":{"channelId":{"odd":true},"callStatus":7}},"brandNew":[1]}"#;
        let d = parse(body).unwrap();
        assert_eq!(d.timestamp, 1_767_225_600_000);
        let Projection::Activity(rows) = d.projection else {
            panic!()
        };
        assert_eq!(rows.activity.channel_id, None);
        assert_eq!(rows.activity.call_status.as_deref(), Some("7"));
        let extra = rows.activity.extra.unwrap();
        assert_eq!(extra["result"]["channelId"]["odd"], true);
        assert_eq!(extra["payload"]["brandNew"][0], 1);
    }

    #[test]
    fn canonical_hash_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "a": {"x":"s","y":[1, 2]}, "b":1 }"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"b":2,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }
}
