//! Automatic persisted queries (Apollo's protocol) over POST and GET, and
//! the cache headers of GET answers.

use crate::common::*;
use leadql::access::Role;
use leadql::config::Config;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const QUERY: &str = "query Funnel { leadFunnel { disposition count } }";

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn extensions(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(s: &TestServer, body: Value) -> (u16, Value) {
    let response = s
        .client
        .post(s.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn get(
    s: &TestServer,
    params: &[(&str, String)],
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = s.client.get(s.url("/graphql")).query(params);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = answer(response).await;
    (status, headers, body)
}

#[tokio::test]
async fn persisted_queries_over_post_and_get() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let (status, body) = s.deliver(SEED_CONNECTED).await;
    assert_eq!(status, 200, "{body}");
    let h = hash(QUERY);

    // Unknown hash: the error Apollo's clients answer by sending the text.
    let (status, body) = post(&s, json!({ "extensions": extensions(&h) })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // Hash and text: stored and answered.
    let (status, full) = post(&s, json!({ "query": QUERY, "extensions": extensions(&h) })).await;
    assert_eq!(status, 200, "{full}");
    assert!(full.get("errors").is_none(), "{full}");
    assert_eq!(full["data"]["leadFunnel"][0]["count"], 1, "{full}");

    // The hash alone now: the same answer, over POST and GET.
    let (status, body) = post(&s, json!({ "extensions": extensions(&h) })).await;
    assert_eq!((status, &body), (200, &full));
    let (status, headers, body) =
        get(&s, &[("extensions", extensions(&h).to_string())], None).await;
    assert_eq!((status, &body), (200, &full));
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(headers["vary"], "Accept, Accept-Encoding");

    // A hash that is not the text's is refused (and stores nothing).
    let other = hash("{ leads { totalCount } }");
    let (status, body) = post(
        &s,
        json!({ "query": QUERY, "extensions": extensions(&other) }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("provided sha does not match query"),
        "{body}"
    );
    let (_, _, body) = get(&s, &[("extensions", extensions(&other).to_string())], None).await;
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );

    // Answers to ordinary GET queries carry no cache header.
    let (status, headers, _) = get(&s, &[("query", QUERY.to_string())], None).await;
    assert_eq!(status, 200);
    assert!(headers.get("cache-control").is_none(), "{headers:?}");
    s.stop().await;
}

/// With a key, GET answers of persisted queries stay private unless the
/// operator lets shared caches keep them (then they vary by the key).
#[tokio::test]
async fn persisted_answers_with_a_key_are_private_unless_allowed() {
    for allowed in [false, true] {
        let db = TestDb::new().await;
        let mut config = Config::for_database(&db.url);
        config.persisted_cache_authorized = allowed;
        let s = TestServer::start_with(config).await;
        let key = leadql::access::create(s.db(), Some("cdn"), &[], Role::Full)
            .await
            .unwrap()
            .key;
        s.state.keys.reload().await.unwrap();
        let h = hash(QUERY);
        let request = s
            .client
            .post(s.url("/graphql"))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({ "query": QUERY, "extensions": extensions(&h) }));
        assert_eq!(request.send().await.unwrap().status(), 200);
        let (status, headers, body) = get(
            &s,
            &[("extensions", extensions(&h).to_string())],
            Some(&key),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if allowed {
            assert_eq!(headers["cache-control"], "public, max-age=60");
            assert_eq!(headers["vary"], "Accept, Accept-Encoding, Authorization");
        } else {
            assert_eq!(headers["cache-control"], "private, no-store");
        }
        // Without the key, the hash answers nothing: the key is checked first.
        let (status, _, _) = get(&s, &[("extensions", extensions(&h).to_string())], None).await;
        assert_eq!(status, 401);
        s.stop().await;
    }
}
