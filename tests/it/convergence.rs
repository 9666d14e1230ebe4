//! Retries and reordering converge: any multiset of deliveries, in any
//! order, concurrently, to several instances, gives the state of one
//! in-order delivery of each.

use crate::common::*;
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashSet;

/// Payloads of a few generated leads, plus older versions of some
/// activities (so stale deliveries happen too), deduplicated.
fn payload_set(seed: u64, leads: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, body) in leadql::generate::generate(leads, seed)
        .into_iter()
        .enumerate()
    {
        if i % 5 == 0 {
            let mut older: Value = serde_json::from_str(&body).unwrap();
            if let Some(ts) = older["timestamp"].as_i64() {
                // Over an hour older, with its own call outcome: the
                // newer version moves the activity's count in the rollup.
                older["timestamp"] = (ts - 3_700_000).into();
                older["leadDisposition"] = "Older Version".into();
                let analysis = &mut older["activity"]["result"]["analysis"];
                if analysis.is_object() {
                    analysis["disposition"] = "Older Outcome".into();
                }
                // And other variables: the newer version moves its counts
                // in the variable rollup.
                let variables = &mut older["activity"]["result"]["variables"]["variables"];
                if let Some(variables) = variables.as_object_mut() {
                    variables.insert("Urgency".into(), "Older Urgency".into());
                    variables.remove("circle");
                }
                let older = older.to_string();
                if seen.insert(older.clone()) {
                    out.push(older);
                }
            }
        }
        if seen.insert(body.clone()) {
            out.push(body);
        }
    }
    out
}

fn timestamp(body: &str) -> i64 {
    serde_json::from_str::<Value>(body).unwrap()["timestamp"]
        .as_i64()
        .unwrap()
}

async fn converge(seed: u64, leads: usize, plan: Vec<usize>) {
    let payloads = payload_set(seed, leads);
    let plan: Vec<&String> = plan.iter().map(|i| &payloads[i % payloads.len()]).collect();
    // Make sure every payload is delivered at least once.
    let mut deliveries: Vec<&String> = payloads.iter().collect();
    deliveries.extend(plan);
    let shuffle_key = |body: &&String| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&(seed, body.as_str(), body.len()), &mut h);
        std::hash::Hasher::finish(&h)
    };
    deliveries.sort_by_key(shuffle_key);

    // The reference: each payload once, in timestamp order, one at a time.
    let reference_db = TestDb::new().await;
    let reference = TestServer::start(&reference_db).await;
    let mut in_order: Vec<&String> = payloads.iter().collect();
    in_order.sort_by_key(|b| timestamp(b));
    for body in in_order {
        let (status, answer) = reference.deliver(body.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }

    // The messy way: duplicates, random order, 16 at a time, spread over
    // two instances sharing one database (as behind a load balancer).
    let messy_db = TestDb::new().await;
    let messy = TestServer::start(&messy_db).await;
    let twin = TestServer::start(&messy_db).await;
    let answers: Vec<(String, u16, Value)> =
        futures::stream::iter(deliveries.into_iter().enumerate())
            .map(|(i, body)| {
                let instance = if i % 2 == 0 { &messy } else { &twin };
                async move {
                    let (status, answer) = instance.deliver(body.clone()).await;
                    (body.clone(), status, answer)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut acknowledged = HashSet::new();
    for (body, status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        acknowledged.insert(
            leadql::ingest::payload::parse(body.as_bytes())
                .unwrap()
                .body_hash,
        );
    }
    // No acknowledged delivery is missing from the log.
    let logged = logged_hashes(messy.db()).await;
    assert_eq!(logged, acknowledged);
    assert_eq!(logged.len(), payloads.len());

    let state = snapshot(messy.db()).await;
    assert_same_state(&snapshot(reference.db()).await, &state);
    // The rollups kept batch by batch equal counting afresh.
    assert!(!state["activity_rollups"].is_empty());
    assert!(!state["lead_rollups"].is_empty());
    assert!(!state["variable_rollups"].is_empty());
    leadql::store::rollup::rebuild(messy.db()).await.unwrap();
    assert_same_state(&state, &snapshot(messy.db()).await);
    reference.stop().await;
    messy.stop().await;
    twin.stop().await;
}

async fn logged_hashes(db: &sea_orm::DatabaseConnection) -> HashSet<String> {
    use sea_orm::EntityTrait;
    entity::delivery::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body_hash)
        .collect()
}

#[test]
fn any_order_any_repeats_converges_to_in_order_state() {
    let runtime = property_runtime();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<u64>(),
        2usize..8,
        proptest::collection::vec(any::<usize>(), 0..60),
    );
    runner
        .run(&strategy, |(seed, leads, plan)| {
            runtime.block_on(converge(seed, leads, plan));
            Ok(())
        })
        .unwrap();
}
