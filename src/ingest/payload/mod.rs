//! Parsing a webhook body into a [`Delivery`]: identity fields checked
//! strictly, everything else read tolerantly.
//!
//! Only `activityId` (or `updateId`), `leadId` and `timestamp` are required.
//! Every other field may be missing, null, or of an unexpected type; a field
//! that cannot be read into its column is kept in an `extra` JSON column, so
//! nothing the platform sent is dropped (the raw body is kept as well).

use activity_rows::activity_rows;
use entity::{activity, analysis, conversation, lead_update, message, tool_call, variable};
use fields::Fields;
use parts::update_row;
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

mod activity_rows;
pub mod callback;
/// The fields of one JSON object not yet read into a column. Each accessor
/// takes a field only when it has the expected type; whatever is left at the
/// end goes to an `extra` column.
mod fields;
mod parts;
#[cfg(test)]
mod tests;
