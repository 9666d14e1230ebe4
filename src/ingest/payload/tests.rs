//! Parsing the seed payloads and the shapes they imply.

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
