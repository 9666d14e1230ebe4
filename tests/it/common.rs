//! Test helpers: a fresh database per test, the server on a random port,
//! and a snapshot of every projection for comparisons.

use leadql::config::Config;
use leadql::AppState;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait, Statement};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

pub const SEED_CONNECTED: &str = include_str!("../../fixtures/connected-interested.json");
pub const SEED_BUSY: &str = include_str!("../../fixtures/not-connected-busy.json");

/// A database of its own, dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("LEADQL_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!(
                    "leadql_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand::random::<u32>()
                );
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to LEADQL_TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                TestDb {
                    url: with_database(&admin_url, &name),
                    postgres: Some((admin_url, name)),
                    _dir: None,
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/leadql.db?mode=rwc", dir.path().display());
                TestDb {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// The admin connection URL and the database name (PostgreSQL only).
    pub fn postgres(&self) -> Option<&(String, String)> {
        self.postgres.as_ref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = Database::connect(&admin_url).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

/// Replace the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// The real server, on 127.0.0.1 and a random port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> TestServer {
        TestServer::start_with(Config::for_database(&db.url)).await
    }

    pub async fn start_with(config: Config) -> TestServer {
        let state = AppState::open(config).await.expect("open the app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let handle = tokio::spawn(async move {
            leadql::run(served, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        TestServer {
            addr,
            state,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// POST a JSON body to the webhook; the status and the JSON answer.
    pub async fn deliver(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/webhooks/activity"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// POST a GraphQL query; the `data`, failing the test on any error.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(
            body.get("errors").is_none(),
            "query failed: {body}\nquery: {query}"
        );
        body["data"].clone()
    }

    /// POST a GraphQL query; the whole JSON answer (status 200 expected).
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let (status, body) = answer(response).await;
        assert_eq!(status, 200, "GraphQL answer: {body}");
        body
    }

    /// `GET /metrics`: the Prometheus exposition text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        response.text().await.expect("body")
    }

    /// The status of a GET request.
    pub async fn get_status(&self, path: &str) -> u16 {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

/// The runtime a property test drives its server with: a proptest case is
/// a plain closure, so each case blocks on it.
pub fn property_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text}"));
    (status, json)
}

/// The value of one sample line (`name{labels} value`) of `/metrics`
/// text, if present.
pub fn sample_of(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// [`sample_of`], 0 when absent (counters not yet incremented).
pub fn sample(text: &str, series: &str) -> f64 {
    sample_of(text, series).unwrap_or(0.0)
}

/// Every projection table, rows as JSON, sorted: equal snapshots mean equal state.
pub async fn snapshot(db: &DatabaseConnection) -> BTreeMap<&'static str, Vec<String>> {
    use entity::*;
    async fn rows<E: EntityTrait>(db: &DatabaseConnection) -> Vec<String> {
        let mut rows: Vec<String> = E::find()
            .into_json()
            .all(db)
            .await
            .expect("read table")
            .iter()
            .map(Value::to_string)
            .collect();
        rows.sort();
        rows
    }
    BTreeMap::from([
        ("leads", rows::<lead::Entity>(db).await),
        ("activities", rows::<activity::Entity>(db).await),
        ("conversations", rows::<conversation::Entity>(db).await),
        ("messages", rows::<message::Entity>(db).await),
        ("tool_calls", rows::<tool_call::Entity>(db).await),
        ("analyses", rows::<analysis::Entity>(db).await),
        ("variables", rows::<variable::Entity>(db).await),
        ("lead_updates", rows::<lead_update::Entity>(db).await),
        ("callbacks", rows::<callback::Entity>(db).await),
        (
            "activity_rollups",
            rows::<activity_rollup::Entity>(db).await,
        ),
        ("lead_rollups", rows::<lead_rollup::Entity>(db).await),
        (
            "variable_rollups",
            rows::<variable_rollup::Entity>(db).await,
        ),
    ])
}

/// Row count of a table.
pub async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

/// The last statement of each PostgreSQL backend of this database whose
/// `application_name` is `application` (`pg_stat_activity`): what a pool
/// of the server's that names its connections ran last.
pub async fn last_statements(db: &DatabaseConnection, application: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT query FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
        [application.into()],
    ))
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|row| row.try_get::<String>("", "query").expect("query"))
    .collect()
}

/// PostgreSQL setting `name` as a session of `db` sees it.
pub async fn postgres_setting(db: &DatabaseConnection, name: &str) -> String {
    db.query_one_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT current_setting($1) AS value",
        [name.into()],
    ))
    .await
    .expect("current_setting")
    .expect("a row")
    .try_get::<String>("", "value")
    .expect("value")
}

/// `reproject` (every projection and rollup computed afresh from the log)
/// leaves `db` as it is: what ingest left is what the log implies.
pub async fn assert_reproject_keeps(db: &DatabaseConnection) {
    let before = snapshot(db).await;
    leadql::store::reproject(db, &Default::default(), |_| {})
        .await
        .unwrap();
    assert_same_state(&before, &snapshot(db).await);
}

/// Assert two snapshots are equal, table by table, with a readable diff.
pub fn assert_same_state(left: &BTreeMap<&str, Vec<String>>, right: &BTreeMap<&str, Vec<String>>) {
    for (table, rows) in left {
        let other = &right[table];
        if rows != other {
            let only_left: Vec<_> = rows.iter().filter(|r| !other.contains(r)).take(3).collect();
            let only_right: Vec<_> = other.iter().filter(|r| !rows.contains(r)).take(3).collect();
            panic!("table {table} differs ({} vs {} rows)\nonly left: {only_left:#?}\nonly right: {only_right:#?}", rows.len(), other.len());
        }
    }
}

/// The real binary, `leadql serve`, as a child process (killed on drop).
pub struct ServerProcess(pub std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServerProcess {
    /// Start it on a free port with `env`; the process and its base URL.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> (ServerProcess, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_leadql"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("LEADQL_LOG", "error")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let process = ServerProcess(child);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                return (process, base);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("leadql did not start");
    }
}

/// A GraphQL WebSocket client speaking `graphql-transport-ws` or the
/// legacy `graphql-ws`, as a browser's client library would.
pub struct WsClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
}

impl WsClient {
    /// Connect to `base` (http://host:port) and complete the handshake.
    pub async fn connect(base: &str, protocol: &str) -> WsClient {
        WsClient::connect_with(base, protocol, serde_json::json!({}))
            .await
            .expect("connection_ack")
    }

    /// Connect with `payload` in connection_init; the reason if refused.
    pub async fn connect_with(
        base: &str,
        protocol: &str,
        payload: Value,
    ) -> Result<WsClient, String> {
        WsClient::open(base, protocol, payload, None).await
    }

    /// Connect with a socket that holds only a few KiB unread, so a client
    /// that stops reading soon makes the server wait (the kernel would
    /// otherwise buffer megabytes for it).
    pub async fn connect_small_buffer(base: &str, protocol: &str) -> WsClient {
        WsClient::open(base, protocol, serde_json::json!({}), Some(4096))
            .await
            .expect("connection_ack")
    }

    async fn open(
        base: &str,
        protocol: &str,
        payload: Value,
        receive_buffer: Option<usize>,
    ) -> Result<WsClient, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/graphql/ws", base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let address: std::net::SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .expect("base is http://ip:port");
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        if let Some(size) = receive_buffer {
            // Before connecting, so the window is never advertised larger.
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.connect(&address.into()).expect("TCP connect");
        socket.set_nonblocking(true).unwrap();
        let stream = tokio::net::TcpStream::from_std(socket.into()).unwrap();
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (ws, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("WebSocket connect");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            protocol,
            "the server speaks the requested protocol"
        );
        let mut client = WsClient {
            ws,
            legacy: protocol == "graphql-ws",
        };
        client
            .send(serde_json::json!({ "type": "connection_init", "payload": payload }))
            .await;
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message =
                tokio::time::timeout(std::time::Duration::from_secs(10), client.ws.next())
                    .await
                    .map_err(|_| "no answer to connection_init".to_string())?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    match value["type"].as_str() {
                        Some("connection_ack") => return Ok(client),
                        Some("ka") | Some("ping") => continue,
                        _ => return Err(value.to_string()),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default())
                }
                Some(Ok(_)) => continue,
                other => return Err(format!("{other:?}")),
            }
        }
    }

    async fn send(&mut self, message: Value) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                message.to_string().into(),
            ))
            .await
            .expect("send");
    }

    /// The next protocol message (answering pings), or None on timeout or
    /// close.
    async fn receive(&mut self, timeout: std::time::Duration) -> Option<Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    match value["type"].as_str() {
                        Some("ping") => self.send(serde_json::json!({ "type": "pong" })).await,
                        Some("ka") => {}
                        _ => return Some(value),
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Start subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(serde_json::json!({
            "id": id, "type": kind, "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// Stop subscription `id` and wait for the server's `complete`.
    pub async fn close_subscription(&mut self, id: &str) {
        let kind = if self.legacy { "stop" } else { "complete" };
        self.send(serde_json::json!({ "id": id, "type": kind }))
            .await;
        loop {
            let message = self
                .receive(std::time::Duration::from_secs(5))
                .await
                .expect("an answer to stopping a subscription");
            if message["type"] == "complete" && message["id"] == id {
                return;
            }
        }
    }

    /// The next result's `data`, or None if nothing comes within `timeout`.
    /// Errors fail the test.
    pub async fn next_data(&mut self, timeout: std::time::Duration) -> Option<Value> {
        let message = self.receive(timeout).await?;
        match message["type"].as_str() {
            Some("next") | Some("data") => {
                assert!(message["payload"].get("errors").is_none(), "{message}");
                Some(message["payload"]["data"].clone())
            }
            _ => panic!("unexpected message: {message}"),
        }
    }

    /// Every result until `quiet` passes without one.
    pub async fn drain(&mut self, quiet: std::time::Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(data) = self.next_data(quiet).await {
            out.push(data);
        }
        out
    }

    /// Every result until at least `n` have come (waiting up to 30 s for
    /// each), then until `quiet` passes without one: a subscriber catching
    /// up on a loaded machine may pause longer than `quiet` between
    /// results, and one that sends too many still shows them.
    pub async fn drain_at_least(&mut self, n: usize, quiet: std::time::Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next_data(std::time::Duration::from_secs(30)).await {
                Some(data) => out.push(data),
                None => break,
            }
        }
        out.extend(self.drain(quiet).await);
        out
    }

    /// Whatever comes next (for error and close checks).
    pub async fn next_message(&mut self, timeout: std::time::Duration) -> Option<Value> {
        self.receive(timeout).await
    }

    /// Wait for the server's close frame: its code and reason.
    pub async fn close_frame(&mut self, timeout: std::time::Duration) -> Option<(u16, String)> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Close(frame) = message {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Statuses seen, and the bodies that got a 2xx.
#[derive(Default)]
pub struct Outcome {
    pub acknowledged: Vec<String>,
    pub statuses: Vec<u16>,
    pub failed_requests: usize,
}

/// Send `payloads` with 16 senders, pacing each sender by `pause`; a body
/// counts as acknowledged once its whole 200 answer was read.
pub fn send_all(
    base: &str,
    payloads: Vec<String>,
    pause: std::time::Duration,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Outcome>>,
) {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{base}/webhooks/activity");
    let task = {
        let outcome = outcome.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            futures::stream::iter(payloads)
                .for_each_concurrent(16, |body| {
                    let (outcome, client, url) = (outcome.clone(), client.clone(), url.clone());
                    async move {
                        tokio::time::sleep(pause).await;
                        let sent = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        let answered = match sent {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                Some((status, response.bytes().await.is_ok()))
                            }
                            Err(_) => None,
                        };
                        let mut o = outcome.lock().unwrap();
                        match answered {
                            Some((status, read)) => {
                                o.statuses.push(status);
                                if status == 200 && read {
                                    o.acknowledged.push(body);
                                }
                            }
                            None => o.failed_requests += 1,
                        }
                    }
                })
                .await
        })
    };
    (task, outcome)
}

/// Every acknowledged body is in the delivery log.
pub async fn assert_all_logged(url: &str, acknowledged: &[String]) {
    use std::collections::HashSet;
    let conn = leadql::store::connect(url).await.unwrap();
    let logged: HashSet<String> = entity::delivery::Entity::find()
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body_hash)
        .collect();
    for body in acknowledged {
        let hash = leadql::ingest::payload::parse(body.as_bytes())
            .unwrap()
            .body_hash;
        assert!(
            logged.contains(&hash),
            "an acknowledged delivery is missing"
        );
    }
    conn.close().await.unwrap();
}
