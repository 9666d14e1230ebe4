//! A promised callback, as the platform records it, read tolerantly.
//!
//! The agent records a promise twice: as a tool call whose name says
//! callback (`scheduleExpertCallback` with `callbackDate: "13/01/2026"`,
//! `callbackTime: "18:00"`) and in the call's extracted variables
//! (`callbackDate`, `callbackTime`, `Followup_time: "13/01/2026 18:00"`).
//! Both are one promise: the tool call wins, the variables are the
//! fallback. The text is a local time of the lead; [`Promise::due_at`]
//! reads it in the first zone that applies (see DESIGN: the project's,
//! else the offset the payload itself shows, else the default). Text that
//! cannot be read is kept as sent, with no moment: a promise is never
//! dropped for its spelling.

use super::ActivityRows;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One promised callback of an activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Promise {
    /// The tool call that recorded it (`tool_call_id`), when one did.
    pub tool_call_id: Option<String>,
    /// The date as sent (or the whole text, when sent as one string).
    pub local_date: Option<String>,
    /// The time as sent.
    pub local_time: Option<String>,
    /// The offset from UTC the payload itself shows, in minutes east.
    pub payload_offset: Option<i32>,
}

/// Which zone reads a promise's local text.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// An IANA zone (the project's, or the default).
    Named(chrono_tz::Tz),
    /// A fixed offset (the payload's own, or one the text carries).
    Offset(FixedOffset),
}

impl Zone {
    /// How `Callback.timezone` names it: the IANA name, or `+05:30`.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Offset(offset) => offset_name(offset),
        }
    }
}

fn offset_name(offset: &FixedOffset) -> String {
    let minutes = offset.local_minus_utc() / 60;
    let sign = if minutes < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60)
}

/// How promises are found and read: which tool names record one
/// (`LEADQL_CALLBACK_TOOLS`), each project's zone
/// (`LEADQL_PROJECT_TIMEZONES`) and the default (`LEADQL_TIMEZONE`).
#[derive(Clone, Debug)]
pub struct Rules {
    /// Lower-case fragments: a tool call whose name contains one records
    /// a promise.
    tools: Vec<String>,
    projects: HashMap<String, Zone>,
    default: Zone,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            tools: vec!["callback".to_string()],
            projects: HashMap::new(),
            default: Zone::Named(chrono_tz::UTC),
        }
    }
}

impl Rules {
    pub fn new(tools: &[String], projects: HashMap<String, Zone>, default: Zone) -> Rules {
        let tools: Vec<String> = tools
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        Rules {
            tools,
            projects,
            default,
        }
    }

    /// Whether a tool call of this name records a promise (ignoring case).
    pub fn is_callback_tool(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.tools.iter().any(|t| name.contains(t.as_str()))
    }

    /// The promise `rows` made, if any, by these rules.
    pub fn promise_of(&self, rows: &ActivityRows) -> Option<Promise> {
        Promise::of(rows, |name| self.is_callback_tool(name))
    }

    /// The promised moment and the zone used, for a promise of `project`.
    pub fn due_at(
        &self,
        promise: &Promise,
        project: Option<&str>,
    ) -> (Option<DateTime<Utc>>, Zone) {
        let zone = project.and_then(|p| self.projects.get(p));
        promise.due_at(zone, &self.default)
    }
}

impl Zone {
    /// An IANA name (`Asia/Kolkata`, `UTC`) or an offset (`+05:30`).
    pub fn parse(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(tz));
        }
        let offset = (|| {
            let (sign, rest) = match text.as_bytes().first()? {
                b'+' => (1, &text[1..]),
                b'-' => (-1, &text[1..]),
                _ => return None,
            };
            let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
            let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
            if !(0..60).contains(&minutes) {
                return None;
            }
            FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
        })();
        offset.map(Zone::Offset).ok_or_else(|| {
            format!("`{text}` is not a time zone: give an IANA name such as Asia/Kolkata, or an offset such as +05:30")
        })
    }

    /// `projectId=Area/City,…` (as `LEADQL_PROJECT_TIMEZONES` holds it).
    pub fn parse_projects(text: &str) -> Result<HashMap<String, Zone>, String> {
        let mut projects = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (project, zone) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}` is not projectId=Area/City"))?;
            let project = project.trim();
            if project.is_empty() {
                return Err(format!("`{entry}` has no project id before `=`"));
            }
            projects.insert(project.to_string(), Zone::parse(zone)?);
        }
        Ok(projects)
    }
}

impl Promise {
    /// The activity's promise, if it made one: from its last tool call
    /// whose name `is_callback` accepts, else from its variables.
    pub fn of(rows: &ActivityRows, is_callback: impl Fn(&str) -> bool) -> Option<Promise> {
        let payload_offset = payload_offset(rows);
        let from_tool = rows.tool_calls.iter().rev().find_map(|call| {
            if !is_callback(&call.name) {
                return None;
            }
            let arguments = call.arguments.as_ref().map(arguments);
            let (local_date, local_time) = arguments
                .as_ref()
                .and_then(|args| date_and_time(args, |_| true))
                .unwrap_or_default();
            Some(Promise {
                tool_call_id: call.tool_call_id.clone(),
                local_date,
                local_time,
                payload_offset,
            })
        });
        // A tool call with no readable text defers to the variables of the
        // same call, which often say it again.
        let from_variables = || {
            let variables = rows.activity.variables.as_ref()?;
            let inner = variables.get("variables").and_then(Value::as_object)?;
            let (local_date, local_time) = date_and_time(inner, |key| {
                key.contains("callback") || key.contains("followup")
            })?;
            Some((local_date, local_time))
        };
        match from_tool {
            Some(mut promise) if promise.local_date.is_none() && promise.local_time.is_none() => {
                if let Some((date, time)) = from_variables() {
                    promise.local_date = date;
                    promise.local_time = time;
                }
                Some(promise)
            }
            Some(promise) => Some(promise),
            None => from_variables().map(|(local_date, local_time)| Promise {
                tool_call_id: None,
                local_date,
                local_time,
                payload_offset,
            }),
        }
    }

    /// The promised moment, read in the first zone that applies: `project`
    /// (the project's setting), the payload's own offset, `default`. Text
    /// with an offset of its own (RFC 3339) is read in that offset. None
    /// when the text cannot be read; the zone used either way.
    pub fn due_at(&self, project: Option<&Zone>, default: &Zone) -> (Option<DateTime<Utc>>, Zone) {
        let zone = project
            .cloned()
            .or_else(|| {
                self.payload_offset
                    .and_then(|m| FixedOffset::east_opt(m * 60))
                    .map(Zone::Offset)
            })
            .unwrap_or_else(|| default.clone());
        match read(self.local_date.as_deref(), self.local_time.as_deref()) {
            Some(Local::Exact(moment)) => (
                Some(moment.with_timezone(&Utc)),
                Zone::Offset(*moment.offset()),
            ),
            Some(Local::Naive(naive)) => {
                let due = match &zone {
                    Zone::Named(tz) => in_zone(tz, naive),
                    Zone::Offset(offset) => in_zone(offset, naive),
                };
                (due, zone)
            }
            None => (None, zone),
        }
    }
}

/// `naive` in `tz`: the earlier of an ambiguous time, and a time in a
/// spring-forward gap read an hour later (when the clocks show it).
fn in_zone<T: TimeZone>(tz: &T, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// Tool call arguments: an object, or an object sent as a JSON string.
fn arguments(json: &Value) -> Map<String, Value> {
    match json {
        Value::Object(map) => map.clone(),
        Value::String(text) => serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default(),
        _ => Map::new(),
    }
}

/// The date and time text among `fields` whose normalised key (lower
/// case, no `_`/`-`) `wanted` accepts: a key with "date" and "time" holds
/// both, as does a time key whose text has a date ("Followup_time"); one
/// with only "date" the date; one with only "time" (or "when") the time.
/// A readable pair first, then a readable whole, then the text as sent;
/// None when none of them holds text.
fn date_and_time(
    fields: &Map<String, Value>,
    wanted: impl Fn(&str) -> bool,
) -> Option<(Option<String>, Option<String>)> {
    let (mut dates, mut times, mut wholes) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in fields {
        let key: String = key
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        if !wanted(&key) {
            continue;
        }
        let Some(text) = text_of(value) else { continue };
        let has_date = key.contains("date");
        let has_time = key.contains("time") || key.contains("when");
        match (has_date, has_time) {
            (true, true) => wholes.push(text),
            (true, false) => dates.push(text),
            (false, true) if read(Some(&text), None).is_some() => wholes.push(text),
            (false, true) => times.push(text),
            (false, false) => {}
        }
    }
    for date in &dates {
        for time in &times {
            if read(Some(date), Some(time)).is_some() {
                return Some((Some(date.clone()), Some(time.clone())));
            }
        }
    }
    if let Some(whole) = wholes.iter().find(|w| read(Some(w), None).is_some()) {
        return Some((Some(whole.clone()), None));
    }
    if dates.is_empty() && times.is_empty() && wholes.is_empty() {
        return None;
    }
    Some((
        dates.first().or(wholes.first()).cloned(),
        times.first().cloned(),
    ))
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What the local text says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Local {
    /// A moment with its own offset (RFC 3339).
    Exact(DateTime<FixedOffset>),
    /// A wall-clock date and time, to read in a zone.
    Naive(NaiveDateTime),
}

/// Read a date (DD/MM/YYYY, YYYY-MM-DD, or a whole date and time) and a
/// time (HH:mm, HH:mm:ss, h[:mm] AM/PM). A date without a time is not a
/// moment (None).
fn read(date: Option<&str>, time: Option<&str>) -> Option<Local> {
    let date = date?.trim();
    if let Ok(exact) = DateTime::parse_from_rfc3339(date) {
        return Some(Local::Exact(exact));
    }
    // "13/01/2026 18:00", "2026-01-13T18:00", "13/01/2026 6:00 PM".
    let (date_part, inline_time) = match date.find(|c: char| c == 'T' || c.is_whitespace()) {
        Some(i) => (&date[..i], Some(date[i + 1..].trim())),
        None => (date, None),
    };
    let day = read_date(date_part)?;
    let clock = match (inline_time.filter(|t| !t.is_empty()), time) {
        (Some(t), _) => read_time(t)?,
        (None, Some(t)) => read_time(t.trim())?,
        (None, None) => return None,
    };
    Some(Local::Naive(day.and_time(clock)))
}

fn read_date(text: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = text.split(['/', '-', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let number = |s: &str| s.parse::<u32>().ok();
    let (year, month, day) = if a.len() == 4 {
        // YYYY-MM-DD
        (number(a)?, number(b)?, number(c)?)
    } else if c.len() == 4 {
        // DD/MM/YYYY, the platform's form.
        (number(c)?, number(b)?, number(a)?)
    } else {
        return None;
    };
    NaiveDate::from_ymd_opt(year as i32, month, day)
}

fn read_time(text: &str) -> Option<NaiveTime> {
    let lower = text.to_ascii_lowercase();
    let lower = lower.trim();
    let (clock, meridiem) = if let Some(rest) = lower.strip_suffix("am") {
        (rest.trim().trim_end_matches('.'), Some(false))
    } else if let Some(rest) = lower.strip_suffix("pm") {
        (rest.trim().trim_end_matches('.'), Some(true))
    } else if let Some(rest) = lower.strip_suffix("a.m.") {
        (rest.trim(), Some(false))
    } else if let Some(rest) = lower.strip_suffix("p.m.") {
        (rest.trim(), Some(true))
    } else {
        (lower, None)
    };
    let mut parts = clock.split([':', '.']);
    let hour: u32 = parts.next()?.trim().parse().ok()?;
    let minute: u32 = match parts.next() {
        Some(m) => m.trim().parse().ok()?,
        // "18" alone is not a time; "6 PM" is.
        None if meridiem.is_some() => 0,
        None => return None,
    };
    let second: u32 = match parts.next() {
        Some(s) => s.trim().parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let hour = match meridiem {
        Some(_) if !(1..=12).contains(&hour) => return None,
        Some(false) => hour % 12,
        Some(true) => hour % 12 + 12,
        None => hour,
    };
    NaiveTime::from_hms_opt(hour, minute, second)
}

/// The offset the payload shows: its local `currentDate` /
/// `currentDayTime` beside a UTC time of about the same moment (the
/// variables' `createdAt`, else the conversation's), to the nearest 30
/// minutes.
fn payload_offset(rows: &ActivityRows) -> Option<i32> {
    let variables = rows.activity.variables.as_ref();
    let inner = variables.and_then(|v| v.get("variables"));
    let utc_of_variables = variables
        .and_then(|v| v.get("createdAt"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let utc_of_conversation = rows
        .conversation
        .as_ref()
        .and_then(|c| c.created_at)
        .and_then(DateTime::from_timestamp_millis);
    let input = rows.activity.input.as_ref();
    [
        (inner, utc_of_variables.or(utc_of_conversation)),
        (input, utc_of_conversation.or(utc_of_variables)),
    ]
    .into_iter()
    .find_map(|(local, utc)| offset_between(local?, utc?))
}

fn offset_between(local: &Value, utc: DateTime<Utc>) -> Option<i32> {
    let date = local.get("currentDate")?.as_str()?.trim();
    let day_time = local.get("currentDayTime")?.as_str()?.trim();
    let date = NaiveDate::parse_from_str(date, "%B %d, %Y").ok()?;
    // "Tuesday 15:36": the clock is the last word.
    let clock = read_time(day_time.rsplit(' ').next()?)?;
    let local = date.and_time(clock);
    let minutes = (local - utc.naive_utc()).num_seconds() as f64 / 60.0;
    let rounded = ((minutes / 30.0).round() * 30.0) as i32;
    // Offsets in use run from -12:00 to +14:00.
    (-12 * 60..=14 * 60).contains(&rounded).then_some(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> ActivityRows {
        let body = include_str!("../../../fixtures/connected-interested.json");
        match super::super::parse(body.as_bytes()).unwrap().projection {
            super::super::Projection::Activity(rows) => *rows,
            _ => unreachable!(),
        }
    }

    fn callback_named(name: &str) -> bool {
        name.to_ascii_lowercase().contains("callback")
    }

    fn utc() -> Zone {
        Zone::Named(chrono_tz::UTC)
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_seed_promise_is_read_at_the_offset_the_payload_shows() {
        let promise = Promise::of(&seed(), callback_named).expect("a promise");
        assert_eq!(
            promise.tool_call_id.as_deref(),
            Some("call_hoHEbliU29OQwgx3")
        );
        assert_eq!(promise.local_date.as_deref(), Some("13/01/2026"));
        assert_eq!(promise.local_time.as_deref(), Some("18:00"));
        assert_eq!(promise.payload_offset, Some(330));
        let (due, zone) = promise.due_at(None, &utc());
        assert_eq!(due, Some(at("2026-01-13T12:30:00Z")));
        assert_eq!(zone.name(), "+05:30");
        // The project's zone comes first.
        let dubai = Zone::Named(chrono_tz::Asia::Dubai);
        let (due, zone) = promise.due_at(Some(&dubai), &utc());
        assert_eq!(due, Some(at("2026-01-13T14:00:00Z")));
        assert_eq!(zone.name(), "Asia/Dubai");
    }

    #[test]
    fn without_the_tool_call_the_variables_say_it() {
        let mut rows = seed();
        rows.tool_calls.retain(|c| !callback_named(&c.name));
        let promise = Promise::of(&rows, callback_named).expect("from the variables");
        assert_eq!(promise.tool_call_id, None);
        assert_eq!(
            promise.due_at(None, &utc()).0,
            Some(at("2026-01-13T12:30:00Z"))
        );
        // Only Followup_time left: a whole date and time in one field.
        let inner = rows.activity.variables.as_mut().unwrap()["variables"]
            .as_object_mut()
            .unwrap();
        inner.remove("callbackDate");
        inner.remove("callbackTime");
        let promise = Promise::of(&rows, callback_named).expect("from Followup_time");
        assert_eq!(promise.local_date.as_deref(), Some("13/01/2026 18:00"));
        assert_eq!(
            promise.due_at(None, &utc()).0,
            Some(at("2026-01-13T12:30:00Z"))
        );
        // Nothing about a callback: no promise (currentDate is not one).
        let inner = rows.activity.variables.as_mut().unwrap()["variables"]
            .as_object_mut()
            .unwrap();
        inner.remove("Followup_time");
        assert_eq!(Promise::of(&rows, callback_named), None);
    }

    #[test]
    fn the_forms_the_design_names_are_read() {
        let naive = |d: &str, t: Option<&str>| match read(Some(d), t) {
            Some(Local::Naive(n)) => Some(n.format("%Y-%m-%d %H:%M:%S").to_string()),
            Some(Local::Exact(e)) => Some(e.to_rfc3339()),
            None => None,
        };
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("13/01/2026", Some("18:00"), Some("2026-01-13 18:00:00")),
            ("3/1/2026", Some("9:05"), Some("2026-01-03 09:05:00")),
            ("2026-01-13", Some("18:00:30"), Some("2026-01-13 18:00:30")),
            ("13/01/2026", Some("6 PM"), Some("2026-01-13 18:00:00")),
            ("13/01/2026", Some("6:30 pm"), Some("2026-01-13 18:30:00")),
            ("13/01/2026", Some("12:15 AM"), Some("2026-01-13 00:15:00")),
            ("13/01/2026", Some("12 PM"), Some("2026-01-13 12:00:00")),
            ("13/01/2026 18:00", None, Some("2026-01-13 18:00:00")),
            ("2026-01-13T18:00", None, Some("2026-01-13 18:00:00")),
            (
                "2026-01-13T18:00:00+05:30",
                None,
                Some("2026-01-13T18:00:00+05:30"),
            ),
            // Unreadable: kept, with no moment.
            ("tomorrow", Some("evening"), None),
            ("13/01/2026", Some("evening"), None),
            ("13/01/2026", None, None),
            ("31/02/2026", Some("18:00"), None),
            ("13/01/2026", Some("25:00"), None),
            ("13/01/2026", Some("13 PM"), None),
            ("13/01/2026", Some("18"), None),
        ];
        for (date, time, expected) in cases {
            assert_eq!(
                naive(date, *time).as_deref(),
                *expected,
                "{date:?} {time:?}"
            );
        }
    }

    #[test]
    fn unreadable_text_is_a_promise_with_no_moment() {
        let mut rows = seed();
        let call = rows
            .tool_calls
            .iter_mut()
            .find(|c| callback_named(&c.name))
            .unwrap();
        call.arguments = Some(serde_json::json!({"date": "kal", "time": "shaam ko"}));
        let promise = Promise::of(&rows, callback_named).unwrap();
        assert_eq!(promise.local_date.as_deref(), Some("kal"));
        assert_eq!(promise.local_time.as_deref(), Some("shaam ko"));
        let (due, zone) = promise.due_at(None, &utc());
        assert_eq!(due, None);
        assert_eq!(zone.name(), "+05:30", "the zone it would have used");
        // Arguments sent as a JSON string are read too.
        let call = rows
            .tool_calls
            .iter_mut()
            .find(|c| callback_named(&c.name))
            .unwrap();
        call.arguments = Some(serde_json::Value::String(
            r#"{"datetime": "14/01/2026 10:00"}"#.into(),
        ));
        let promise = Promise::of(&rows, callback_named).unwrap();
        assert_eq!(
            promise.due_at(None, &utc()).0,
            Some(at("2026-01-14T04:30:00Z"))
        );
    }

    #[test]
    fn zones_read_wall_clock_times_through_their_rules() {
        let promise = Promise {
            tool_call_id: None,
            local_date: Some("08/03/2026".into()),
            local_time: Some("02:30".into()),
            payload_offset: None,
        };
        // 02:30 does not exist in New York that night: read an hour later.
        let ny = Zone::Named(chrono_tz::America::New_York);
        assert_eq!(
            promise.due_at(None, &ny).0,
            Some(at("2026-03-08T07:30:00Z"))
        );
        // No project zone, no payload offset: the default.
        let (_, zone) = promise.due_at(None, &ny);
        assert_eq!(zone.name(), "America/New_York");
    }

    #[test]
    fn zones_are_iana_names_or_offsets_and_anything_else_is_refused_with_the_reason() {
        assert_eq!(Zone::parse("Asia/Kolkata").unwrap().name(), "Asia/Kolkata");
        assert_eq!(Zone::parse("UTC").unwrap().name(), "UTC");
        assert_eq!(Zone::parse("+05:30").unwrap().name(), "+05:30");
        assert_eq!(Zone::parse("-04").unwrap().name(), "-04:00");
        let err = Zone::parse("Mars/Olympus").unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("IANA"),
            "{err}"
        );
        assert!(Zone::parse("+05:75").is_err());
        let projects = Zone::parse_projects("p1=Asia/Kolkata, p2=+01:00,").unwrap();
        assert_eq!(projects["p1"].name(), "Asia/Kolkata");
        assert_eq!(projects["p2"].name(), "+01:00");
        assert!(Zone::parse_projects("").unwrap().is_empty());
        assert!(Zone::parse_projects("p1")
            .unwrap_err()
            .contains("projectId=Area/City"));
        assert!(Zone::parse_projects("=UTC").is_err());
    }

    #[test]
    fn the_tool_names_that_record_a_promise_are_configurable_and_ignore_case() {
        let default = Rules::default();
        assert!(default.is_callback_tool("scheduleExpertCallback"));
        assert!(default.is_callback_tool("CALLBACK_LATER"));
        assert!(!default.is_callback_tool("endCall"));
        let custom = Rules::new(
            &[" FollowUp".to_string(), String::new()],
            HashMap::new(),
            Zone::Named(chrono_tz::UTC),
        );
        assert!(custom.is_callback_tool("bookFollowup"));
        assert!(!custom.is_callback_tool("scheduleExpertCallback"));
        assert!(!custom.is_callback_tool("endCall"));
    }
}
