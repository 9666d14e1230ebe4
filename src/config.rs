//! leadql's configuration: one struct, each field settable by a flag or an
//! environment variable, with a default that runs out of the box.

use crate::ingest::auth::WebhookSecret;
use crate::ingest::payload::callback::{Rules, Zone};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The default database: an embedded SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://leadql.db?mode=rwc";

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LEADQL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: sqlite://PATH?mode=rwc (embedded) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Shared secret for webhook deliveries. When set, each delivery must
    /// carry `Authorization: Bearer <secret>` or a valid Standard Webhooks
    /// signature. Several secrets separated by commas (a rotation): any
    /// one passes. Unset: deliveries are not authenticated.
    #[arg(long, env = "LEADQL_WEBHOOK_SECRET", value_parser = parse_secret, hide_env_values = true)]
    pub webhook_secret: Option<WebhookSecret>,

    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "LEADQL_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Deliveries committed together at most (group commit).
    #[arg(long, env = "LEADQL_INGEST_BATCH")]
    pub ingest_batch: Option<usize>,

    /// Concurrent writer tasks, each for its own share of the leads
    /// (default: 1 on SQLite, 2 on PostgreSQL). SQLite has one writer, so
    /// it always uses 1 (and warns when this says more).
    #[arg(long, env = "LEADQL_INGEST_WORKERS")]
    pub ingest_workers: Option<usize>,

    /// Webhook deliveries being stored at once, at most (queued or in a
    /// commit). Past that a delivery is answered 503 with `Retry-After: 1`
    /// at once, and nothing of it is stored, so an overloaded server keeps
    /// its latency and memory instead of queueing without limit.
    #[arg(long, env = "LEADQL_INGEST_QUEUE", default_value_t = 128)]
    pub ingest_queue: usize,

    /// Database connections in the pool (default: 8 on SQLite, 16 on
    /// PostgreSQL).
    #[arg(long, env = "LEADQL_DB_CONNECTIONS")]
    pub db_connections: Option<u32>,

    /// SQLite's page cache per pooled connection, MiB: with
    /// `--db-connections` it bounds what the cache may hold (8 × 32 MiB by
    /// default). Smaller saves memory; reads of a large database that no
    /// longer fit go to the operating system's file cache instead.
    #[arg(long, env = "LEADQL_SQLITE_CACHE_MIB", default_value_t = crate::store::DEFAULT_SQLITE_CACHE_MIB)]
    pub sqlite_cache_mib: u32,

    /// Disposition events buffered per subscriber; one that falls further
    /// behind catches up from the database.
    #[arg(long, env = "LEADQL_SUBSCRIPTION_BUFFER", default_value_t = 4096)]
    pub subscription_buffer: usize,

    /// Bytes the kernel may hold unsent per connection (SO_SNDBUF; 0: the
    /// system's autotuning, up to several MiB). Bounds what a subscriber
    /// that stops reading costs: once this is full it falls behind and
    /// later catches up from the database.
    #[arg(long, env = "LEADQL_SOCKET_SEND_BUFFER", default_value_t = 128 * 1024)]
    pub socket_send_buffer: usize,

    /// GraphQL requests per second allowed per API key (bursts of twice
    /// that); 0: no limit.
    #[arg(long, env = "LEADQL_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// Browser origins allowed to call the API (CORS), comma-separated,
    /// e.g. `https://app.example.com`; `*` allows any. Default: none.
    #[arg(
        long = "cors-origin",
        env = "LEADQL_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Deepest GraphQL selection accepted.
    #[arg(long, env = "LEADQL_MAX_DEPTH", default_value_t = 16)]
    pub max_depth: usize,

    /// Highest GraphQL query cost accepted (each field costs 1, a list
    /// field its page size times its selection).
    #[arg(long, env = "LEADQL_MAX_COMPLEXITY", default_value_t = 250_000)]
    pub max_complexity: usize,

    /// Seconds a GraphQL query may run before it is stopped.
    #[arg(long, env = "LEADQL_QUERY_TIMEOUT", default_value_t = 10.0)]
    pub query_timeout: f64,

    /// Persisted query texts kept per instance (automatic persisted
    /// queries); past it the least used are forgotten and their clients
    /// send the text again.
    #[arg(long, env = "LEADQL_PERSISTED_QUERIES", default_value_t = 10_000)]
    pub persisted_queries: u64,

    /// Seconds a shared cache (a CDN) may keep the answer to a persisted
    /// query asked over GET (`Cache-Control: public, max-age=…`); 0: none.
    #[arg(long, env = "LEADQL_PERSISTED_MAX_AGE", default_value_t = 60)]
    pub persisted_max_age: u64,

    /// Let shared caches keep answers to persisted GET queries that carry
    /// an `Authorization` header too (answers then vary by it). Off: such
    /// answers are `private`.
    #[arg(
        long,
        env = "LEADQL_PERSISTED_CACHE_AUTHORIZED",
        default_value_t = false
    )]
    pub persisted_cache_authorized: bool,

    /// Remove the raw bodies of accepted deliveries received longer ago
    /// than this (`90d`, `12h`, `2w`), checked at start and every hour;
    /// leads, activities and every other projection stay, but `reproject`
    /// can no longer rebuild the leads concerned. Unset: bodies are kept.
    #[arg(long, env = "LEADQL_PRUNE_DELIVERIES_OLDER_THAN", value_parser = parse_age)]
    pub prune_deliveries_older_than: Option<std::time::Duration>,

    /// Delete rejected deliveries (kept for inspection and replay)
    /// received longer ago than this (`30d`). Unset: kept.
    #[arg(long, env = "LEADQL_PRUNE_REJECTED_OLDER_THAN", value_parser = parse_age)]
    pub prune_rejected_older_than: Option<std::time::Duration>,

    /// How often retention runs (tests shorten it).
    #[arg(skip = std::time::Duration::from_secs(3600))]
    pub prune_every: std::time::Duration,

    #[command(flatten)]
    pub callbacks: CallbackConfig,

    /// What callbacks are judged against: the system's clock, or in tests
    /// one they move.
    #[arg(skip)]
    pub clock: crate::clock::Clock,

    /// A bulk load (`leadql import`): ingest takes larger batches unless
    /// `ingest_batch` says otherwise (see `PipelineConfig::for_import`).
    #[arg(skip)]
    pub bulk: bool,

    /// From how many matching rows a list in time order walks its index
    /// rather than reading every match (see `Limits::walk_from`). Not a
    /// setting: tests lower it to page through both plans on small data.
    #[arg(skip = crate::graphql::WALK_FROM)]
    pub walk_from: u64,

    /// How many rows a page walks before it reads the list instead, where
    /// no bounded count decides (see `Limits::walk_first`). Not a setting:
    /// tests set it to page through both plans on small data.
    #[arg(skip = crate::graphql::WALK_FIRST)]
    pub walk_first: u64,
}

/// How promised callbacks are found and read (shared by `serve`, `import`
/// and `reproject`, which must read them alike).
#[derive(Clone, Debug, clap::Args)]
pub struct CallbackConfig {
    /// The zone a callback's local time is read in when neither its
    /// project's zone nor the payload's own offset applies: an IANA name
    /// (Asia/Kolkata) or an offset (+05:30).
    #[arg(long, env = "LEADQL_TIMEZONE", default_value = "UTC", value_parser = Zone::parse)]
    pub timezone: Zone,

    /// Each project's zone, which comes first:
    /// `projectId=Area/City,projectId=Area/City`.
    #[arg(long, env = "LEADQL_PROJECT_TIMEZONES", default_value = "", value_parser = Zone::parse_projects)]
    pub project_timezones: HashMap<String, Zone>,

    /// A tool call whose name contains one of these (ignoring case,
    /// comma-separated) records a promised callback.
    #[arg(
        long,
        env = "LEADQL_CALLBACK_TOOLS",
        default_value = "callback",
        value_delimiter = ','
    )]
    pub callback_tools: Vec<String>,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            timezone: Zone::Named(chrono_tz::UTC),
            project_timezones: HashMap::new(),
            callback_tools: vec!["callback".to_string()],
        }
    }
}

impl CallbackConfig {
    /// The rules ingest reads promises by.
    pub fn rules(&self) -> Rules {
        Rules::new(
            &self.callback_tools,
            self.project_timezones.clone(),
            self.timezone.clone(),
        )
    }
}

/// An age such as `90d`, `36h` or `2w` (a number and a unit; `humantime`'s
/// syntax, so `1d 12h` too).
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: write an age such as 90d, 36h or 2w"))
}

fn parse_secret(s: &str) -> Result<WebhookSecret, String> {
    let secret = WebhookSecret::new(s);
    if secret.is_empty() {
        return Err(
            "the webhook secret must not be empty (several are separated by commas)".into(),
        );
    }
    Ok(secret)
}

impl Config {
    /// How long raw bodies are kept.
    pub fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            deliveries: self.prune_deliveries_older_than,
            rejected: self.prune_rejected_older_than,
        }
    }

    /// The GraphQL limits this configuration sets.
    pub fn limits(&self) -> crate::graphql::Limits {
        crate::graphql::Limits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            timeout: std::time::Duration::from_secs_f64(self.query_timeout.max(0.001)),
            walk_from: self.walk_from,
            walk_first: self.walk_first,
        }
    }

    /// A configuration for the given database, everything else default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Config {
            listen: ([127, 0, 0, 1], 0).into(),
            database_url: database_url.into(),
            webhook_secret: None,
            body_limit: 1024 * 1024,
            ingest_batch: None,
            ingest_workers: None,
            ingest_queue: 128,
            db_connections: None,
            sqlite_cache_mib: crate::store::DEFAULT_SQLITE_CACHE_MIB,
            subscription_buffer: 4096,
            socket_send_buffer: 128 * 1024,
            rate_limit: 100,
            cors_origins: Vec::new(),
            max_depth: 16,
            max_complexity: 250_000,
            query_timeout: 10.0,
            persisted_queries: 10_000,
            persisted_max_age: 60,
            persisted_cache_authorized: false,
            prune_deliveries_older_than: None,
            prune_rejected_older_than: None,
            prune_every: std::time::Duration::from_secs(3600),
            callbacks: CallbackConfig::default(),
            clock: crate::clock::Clock::default(),
            bulk: false,
            walk_from: crate::graphql::WALK_FROM,
            walk_first: crate::graphql::WALK_FIRST,
        }
    }
}
