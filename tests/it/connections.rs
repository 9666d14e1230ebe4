//! Honest connection handling: an answer given before the request's body
//! was read says `Connection: close`, so a keep-alive client never writes
//! its next request into a connection the server is closing; and a POST to
//! /graphql without a Content-Type is refused (415), as GraphQL over HTTP
//! asks.

use crate::common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `head` (and `body`) on a fresh TCP connection; the answer's
/// status line and headers, lowercased.
async fn raw(base: &str, head: &str, body: &[u8]) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before it took the whole body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => panic!("no answer"),
        }
    }
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[tokio::test]
async fn answers_before_the_body_was_read_close_the_connection() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let big = vec![b' '; 2 * 1024 * 1024];
    for (path, content_type, expected) in [
        // Over the limit: refused from the Content-Length alone.
        ("/webhooks/activity", "application/json", "413"),
        ("/graphql", "application/json", "413"),
        // Judged on the headers alone.
        ("/webhooks/activity", "text/plain", "415"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            big.len()
        );
        let answer = raw(&base, &head, &big).await;
        assert!(
            answer.starts_with(&format!("http/1.1 {expected}")),
            "{path} {content_type}: {answer}"
        );
        assert!(
            answer.contains("\r\nconnection: close"),
            "{path} {content_type}: {answer}"
        );
    }
    // An answer to a request whose body was read keeps the connection.
    let body = br#"{"query":"{ leadFunnel { count } }"}"#;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let answer = raw(&base, &head, body).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    s.stop().await;
}

/// A client that reuses its connections, as a webhook sender does: after
/// a 413 its next delivery on the same client succeeds.
#[tokio::test]
async fn a_keep_alive_sender_goes_on_after_a_413() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for round in 0..3 {
        let response = client
            .post(s.url("/webhooks/activity"))
            .header("content-type", "application/json")
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "round {round}");
        assert_eq!(response.headers()["connection"], "close", "round {round}");
        let response = client
            .post(s.url("/webhooks/activity"))
            .header("content-type", "application/json")
            .body(SEED_CONNECTED)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_graphql_post_without_content_type_is_refused() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let response = s
        .client
        .post(s.url("/graphql"))
        .body(r#"{"query":"{ leadFunnel { count } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type"),
        "{body}"
    );
    // With one, the same body is answered.
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ leadFunnel { count } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["leadFunnel"], json!([]));
    s.stop().await;
}
