//! Malformed and mistyped bodies never panic the server and never get a 500:
//! random bytes, truncations, deep nesting, huge strings, and a wrong type
//! in every field of the seed payload.

use crate::common::*;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Every path (object keys and array indexes) in a JSON value.
fn paths(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Value::from(k.as_str()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Value::from(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn set_at(value: &mut Value, path: &[Value], replacement: Value) {
    let mut target = value;
    for step in path {
        target = match step {
            Value::String(k) => &mut target[k.as_str()],
            Value::Number(i) => &mut target[i.as_u64().unwrap() as usize],
            _ => unreachable!(),
        };
    }
    *target = replacement;
}

async fn post_all(server: &TestServer, bodies: Vec<Vec<u8>>) -> Vec<(Vec<u8>, u16, Value)> {
    futures::stream::iter(bodies)
        .map(|body| async move {
            let (status, answer) = server.deliver(body.clone()).await;
            (body, status, answer)
        })
        .buffer_unordered(16)
        .collect()
        .await
}

#[tokio::test]
async fn a_wrong_type_in_any_field_is_stored_or_rejected_never_a_500() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let seed: Value = serde_json::from_str(SEED_CONNECTED).unwrap();
    let mut all_paths = Vec::new();
    paths(&seed, &mut Vec::new(), &mut all_paths);
    let huge = "ह".repeat(50_000);
    let replacements = [
        Value::Null,
        Value::from(0),
        Value::from(-1),
        Value::from(1e308),
        Value::from(u64::MAX),
        Value::from(""),
        Value::from("\u{0}nul\u{0}"),
        Value::from(huge.as_str()),
        Value::from(true),
        serde_json::json!([]),
        serde_json::json!({"unexpected": {"nested": [1, "two", null]}}),
    ];
    let identity = ["activityId", "leadId", "timestamp"];
    let mut bodies = Vec::new();
    for path in &all_paths {
        for (n, replacement) in replacements.iter().enumerate() {
            let mut mutated = seed.clone();
            set_at(&mut mutated, path, replacement.clone());
            // A distinct activity per mutation, unless the mutation is of the id.
            if path != &[Value::from("activityId")] {
                mutated["activityId"] = format!("fuzz-{}-{n}", bodies.len()).into();
            }
            bodies.push(mutated.to_string().into_bytes());
        }
    }
    let total = bodies.len();
    for (body, status, answer) in post_all(&server, bodies).await {
        let mutated: Value = serde_json::from_slice(&body).unwrap();
        let identity_ok = identity.iter().all(|f| leadql_identity_ok(&mutated[*f], f));
        if identity_ok {
            assert_eq!(
                status,
                200,
                "only the identity fields are required: {answer}\n{}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        } else {
            assert_eq!(status, 422, "{answer}");
            assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    assert!(total > 1000, "{total} mutations");
    assert_eq!(server.get_status("/healthz").await, 200);
    server.stop().await;
}

/// What the contract accepts for an identity field.
fn leadql_identity_ok(value: &Value, field: &str) -> bool {
    match (field, value) {
        ("timestamp", Value::Number(n)) => {
            n.as_i64().is_some_and(|i| i.abs() < 253_402_300_799_999)
                || n.as_u64().is_none() && n.as_f64().is_some_and(|f| f.abs() < 2.5e14)
        }
        ("timestamp", Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .is_ok_and(|i| i.abs() < 253_402_300_799_999),
        (_, Value::String(s)) => !s.trim().is_empty(),
        (_, Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

#[tokio::test]
async fn random_and_broken_bodies_never_get_a_500() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for _ in 0..200 {
        let len = rng.random_range(0..2048);
        bodies.push((0..len).map(|_| rng.random::<u8>()).collect());
    }
    // Every truncation point of a seed (every 37th, to keep it quick).
    let seed = SEED_CONNECTED.as_bytes();
    for cut in (0..seed.len()).step_by(37) {
        bodies.push(seed[..cut].to_vec());
    }
    // Deep nesting, beyond and within the parser's limit.
    for depth in [10, 127, 129, 5_000, 100_000] {
        let mut deep = format!(
            "{{\"activityId\":\"a\",\"leadId\":\"l\",\"timestamp\":1,\"x\":{}",
            "[".repeat(depth)
        );
        deep.push_str(&"]".repeat(depth));
        deep.push('}');
        bodies.push(deep.into_bytes());
    }
    // A huge string just under the 1 MiB limit, and invalid UTF-8 inside a string.
    bodies.push(
        format!(
            "{{\"activityId\":\"a\",\"leadId\":\"l\",\"timestamp\":1,\"s\":\"{}\"}}",
            "x".repeat(1_000_000)
        )
        .into_bytes(),
    );
    bodies.push(b"{\"activityId\":\"a\xff\xfe\",\"leadId\":\"l\",\"timestamp\":1}".to_vec());
    bodies.push(b"\xef\xbb\xbf{\"activityId\":\"bom\",\"leadId\":\"l\",\"timestamp\":1}".to_vec());
    let count = bodies.len();
    let answers = post_all(&server, bodies).await;
    assert_eq!(answers.len(), count);
    for (body, status, answer) in answers {
        assert!(
            matches!(status, 200 | 400 | 413 | 422),
            "status {status} for {:?}: {answer}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
        if status != 200 {
            assert!(
                answer["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{answer}"
            );
        }
    }
    assert_eq!(server.get_status("/healthz").await, 200);
    assert_eq!(server.deliver(SEED_BUSY).await.0, 200, "still storing");
    server.stop().await;
}
