//! Reading a JSON object tolerantly: each getter takes its field out (so
//! what nobody took is left for `extra`) and answers None for a missing,
//! null or differently typed value.

use super::epoch_ms;
use serde_json::{Map, Value};

#[derive(Default)]
pub(super) struct Fields(pub(super) Map<String, Value>);

impl Fields {
    pub(super) fn take_if<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&Value) -> Option<T>,
    ) -> Option<T> {
        let value = self.0.get(key)?;
        if value.is_null() {
            self.0.remove(key);
            return None;
        }
        let read = read(value)?;
        self.0.remove(key);
        Some(read)
    }

    pub(super) fn str(&mut self, key: &str) -> Option<String> {
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

    pub(super) fn int(&mut self, key: &str) -> Option<i64> {
        self.take_if(key, |v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub(super) fn int32(&mut self, key: &str) -> Option<i32> {
        self.take_if(key, |v| match v {
            Value::Number(n) => n.as_i64().and_then(|i| i32::try_from(i).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub(super) fn bool(&mut self, key: &str) -> Option<bool> {
        self.take_if(key, |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    }

    pub(super) fn time(&mut self, key: &str) -> Option<i64> {
        self.take_if(key, epoch_ms)
    }

    /// Any non-null value, as it is.
    pub(super) fn json(&mut self, key: &str) -> Option<Value> {
        match self.0.remove(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub(super) fn object(&mut self, key: &str) -> Option<Fields> {
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

    pub(super) fn array(&mut self, key: &str) -> Option<Vec<Value>> {
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
    pub(super) fn drop_if_equal(&mut self, key: &str, known: &str) {
        if self.0.get(key).and_then(Value::as_str) == Some(known) {
            self.0.remove(key);
        }
    }

    pub(super) fn rest(self) -> Option<Value> {
        (!self.0.is_empty()).then_some(Value::Object(self.0))
    }
}
