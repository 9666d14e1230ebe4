//! The filter operators on values in memory, for live events: the same
//! answers the database gives for the same filter on the stored row, with
//! SQL's three-valued logic.

use super::{BooleanFilter, DateTimeFilter, IntFilter, StringFilter};
use crate::store::case::fold;
use chrono::{DateTime, Utc};

/// SQL's three-valued logic, for checking live events in memory exactly as
/// the database would check stored ones: `None` is SQL's NULL (unknown).
pub type Truth = Option<bool>;

pub fn all(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut unknown = false;
    for v in values {
        match v {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

pub fn any(values: impl IntoIterator<Item = Truth>) -> Truth {
    let mut unknown = false;
    for v in values {
        match v {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// `text LIKE pattern` with one `%` at either end or both, ignoring case
/// as the databases do ([`fold`]).
fn like_match(value: &str, needle: &str, anchored_start: bool) -> bool {
    let value = fold(value);
    let needle = fold(needle);
    if anchored_start {
        value.starts_with(&needle)
    } else {
        value.contains(&needle)
    }
}

impl StringFilter {
    /// What [`string`] makes of this filter, on one value.
    pub fn test(&self, value: Option<&str>, fold_case: bool) -> Truth {
        let norm = |v: &str| {
            if fold_case {
                fold(v)
            } else {
                v.to_string()
            }
        };
        let lhs = value.map(norm);
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(v) = &self.eq {
            checks.push(lhs.as_ref().map(|l| *l == norm(v)));
        }
        if let Some(v) = &self.ne {
            checks.push(lhs.as_ref().map(|l| *l != norm(v)));
        }
        if let Some(vs) = &self.r#in {
            checks.push(if vs.is_empty() {
                Some(false)
            } else {
                lhs.as_ref().map(|l| vs.iter().any(|v| *l == norm(v)))
            });
        }
        if let Some(vs) = &self.not_in {
            checks.push(if vs.is_empty() {
                Some(true)
            } else {
                lhs.as_ref().map(|l| !vs.iter().any(|v| *l == norm(v)))
            });
            checks.push(Some(value.is_some()));
        }
        if let Some(v) = &self.contains {
            checks.push(value.map(|x| like_match(x, v, false)));
        }
        if let Some(v) = &self.starts_with {
            checks.push(value.map(|x| like_match(x, v, true)));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}

impl DateTimeFilter {
    /// What [`datetime`] makes of this filter, on one value.
    pub fn test(&self, value: Option<i64>) -> Truth {
        let ms = |t: &DateTime<Utc>| t.timestamp_millis();
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(t) = &self.eq {
            checks.push(value.map(|v| v == ms(t)));
        }
        if let Some(t) = &self.gt {
            checks.push(value.map(|v| v > ms(t)));
        }
        if let Some(t) = &self.gte {
            checks.push(value.map(|v| v >= ms(t)));
        }
        if let Some(t) = &self.lt {
            checks.push(value.map(|v| v < ms(t)));
        }
        if let Some(t) = &self.lte {
            checks.push(value.map(|v| v <= ms(t)));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}

impl IntFilter {
    /// What [`int`] makes of this filter, on one value.
    pub fn test(&self, value: Option<i64>) -> Truth {
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(v) = self.eq {
            checks.push(value.map(|x| x == v));
        }
        if let Some(v) = self.ne {
            checks.push(value.map(|x| x != v));
        }
        if let Some(vs) = &self.r#in {
            checks.push(if vs.is_empty() {
                Some(false)
            } else {
                value.map(|x| vs.contains(&x))
            });
        }
        if let Some(v) = self.gt {
            checks.push(value.map(|x| x > v));
        }
        if let Some(v) = self.gte {
            checks.push(value.map(|x| x >= v));
        }
        if let Some(v) = self.lt {
            checks.push(value.map(|x| x < v));
        }
        if let Some(v) = self.lte {
            checks.push(value.map(|x| x <= v));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}

impl BooleanFilter {
    /// What [`boolean`] makes of this filter, on one value.
    pub fn test(&self, value: Option<bool>) -> Truth {
        let mut checks: Vec<Truth> = Vec::new();
        if let Some(v) = self.eq {
            checks.push(value.map(|x| x == v));
        }
        if let Some(null) = self.is_null {
            checks.push(Some(value.is_none() == null));
        }
        all(checks)
    }
}
