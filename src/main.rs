//! The `leadql` command line: parse arguments, set up logging, call into the library.

use clap::{Parser, Subcommand, ValueEnum};
use leadql::config::{CallbackConfig, Config, DEFAULT_DATABASE_URL};
use leadql::{store, AppState};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// leadql: a GraphQL lead API over the webhook stream of an AI voice-calling platform.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "LEADQL_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Make a key and print it (once: only its hash is stored).
    Create {
        /// A name for the key (who or what uses it), unique. Default:
        /// `key-` and the key's first characters.
        #[arg(long)]
        name: Option<String>,
        /// A project the key may see; repeat for several. None: all projects.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// What the key may read: `full` (everything) or `analyst`
        /// (aggregates and every field that is not personal data).
        #[arg(long, value_enum, default_value_t = leadql::access::Role::Full)]
        role: leadql::access::Role,
    },
    /// List keys: name, scope, creation, last use, revocation (never the key).
    List,
    /// Revoke a key by name; every instance refuses it at once, and closes
    /// its open subscriptions within a second.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the webhook and the API over HTTP.
    Serve {
        #[command(flatten)]
        config: Box<Config>,
        /// Load the example payloads and a small generated data set first,
        /// so there is data to look at straight away.
        #[arg(long)]
        demo: bool,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` in the repository
    /// is this output.
    Schema,
    /// Manage API keys for the GraphQL API: once one exists, every query
    /// and subscription needs one.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
        database_url: String,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Ingest payloads from JSON or NDJSON files (`-` for stdin), exactly as
    /// the webhook would, and print how many were stored, duplicate, stale
    /// and rejected.
    Import {
        /// Files holding one JSON payload, a JSON array of payloads, or NDJSON.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        /// Deliveries committed together at most (default: 2048 on SQLite,
        /// 1024 on PostgreSQL, larger than `serve`'s: an import waits for
        /// none of its deliveries alone, and larger commits cost less per
        /// delivery).
        #[arg(long, env = "LEADQL_INGEST_BATCH")]
        ingest_batch: Option<usize>,
        #[command(flatten)]
        callbacks: CallbackConfig,
    },
    /// Rebuild every projection (leads, activities, conversations, …) from
    /// the raw delivery log, e.g. after an upgrade that reads payloads better.
    Reproject {
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        #[command(flatten)]
        callbacks: CallbackConfig,
    },
    /// Remove the raw bodies of old accepted deliveries (their leads,
    /// activities and every other projection stay), and delete old
    /// rejected deliveries; `serve` can do this hourly
    /// (`--prune-deliveries-older-than`).
    #[command(group(clap::ArgGroup::new("age")
        .required(true)
        .multiple(true)
        .args(["deliveries_older_than", "rejected_older_than"])))]
    Prune {
        /// Remove bodies of accepted deliveries received longer ago than
        /// this: `90d`, `12h`, `2w`. `reproject` can no longer rebuild the
        /// leads concerned (it keeps them as they are).
        #[arg(long, value_parser = leadql::config::parse_age)]
        deliveries_older_than: Option<std::time::Duration>,
        /// Delete rejected deliveries received longer ago than this.
        #[arg(long, value_parser = leadql::config::parse_age)]
        rejected_older_than: Option<std::time::Duration>,
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// List rejected deliveries (malformed, or without identity fields), or
    /// with --replay try them again, e.g. after an upgrade that reads more.
    Rejected {
        /// Try each pending rejected delivery again; accepted ones are marked replayed.
        #[arg(long)]
        replay: bool,
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        #[command(flatten)]
        callbacks: CallbackConfig,
    },
    /// Write realistic synthetic payloads as NDJSON (to stdout or --output).
    Generate {
        /// Number of leads; each has one to four call attempts and more.
        #[arg(long)]
        leads: usize,
        /// Random seed: the same seed gives the same stream.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Logs to stderr (filtered by `LEADQL_LOG`), and traces over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see `leadql::otel`).
fn init_tracing(format: LogFormat) -> anyhow::Result<Option<leadql::otel::Traces>> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADQL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    }
    .with_filter(filter);
    let (traces, exporter) = match leadql::otel::Traces::from_env()? {
        Some((traces, layer)) => (Some(traces), Some(layer)),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(exporter)
        .init();
    Ok(traces)
}

/// mimalloc instead of glibc's malloc: serving a GraphQL page is mostly
/// small allocations (rows, values, futures, JSON), which took a quarter of
/// the server's CPU with glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas eagerly on Linux, and what it commits
/// stays resident: under ingest load that doubled the server's memory (peak
/// RSS 155-172 MiB on SQLite and 80-98 MiB on PostgreSQL, against 76 and 34
/// MiB with eager commit off, at the same throughput). Commit as used
/// instead, by default: `MIMALLOC_ARENA_EAGER_COMMIT` in the environment
/// still decides when set. Runs before `main`, before the first arena is
/// made, and allocates nothing.
#[ctor::ctor(unsafe)]
fn commit_memory_as_used() {
    // `mi_option_arena_eager_commit`, the fifth option in mimalloc 2 and 3
    // alike (the crate names no constant for it).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: plain FFI calls: a version query (2.x.y is 2xxyy), and the
    // option's default, which mimalloc reads (after the environment) when
    // it first grows an arena.
    unsafe {
        if libmimalloc_sys::mi_version() >= 20000 {
            libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 0);
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let traces = match init_tracing(cli.log_format) {
        Ok(traces) => traces,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match execute(cli.command).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(traces) = traces {
        // Blocks until the last spans are sent: off the async threads.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    code
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config, demo } => {
            let listen = config.listen;
            let state = AppState::open(*config).await?;
            if demo {
                let count = leadql::demo::load_recent(&state, 200).await?;
                tracing::info!(payloads = count, "demo data loaded");
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
            leadql::run(state, listener, shutdown_signal()).await?;
        }
        Command::Schema => {
            print!("{}", leadql::graphql::sdl());
        }
        Command::Keys {
            action,
            database_url,
        } => {
            let db = store::connect(&database_url).await?;
            store::migrate(&db).await?;
            match action {
                KeysAction::Create {
                    name,
                    projects,
                    role,
                } => {
                    let created =
                        match leadql::access::create(&db, name.as_deref(), &projects, role).await {
                            Ok(created) => created,
                            Err(leadql::access::KeyError::Invalid(why)) => {
                                eprintln!("error: {why}");
                                return Ok(ExitCode::from(2));
                            }
                            Err(err) => return Err(err.into()),
                        };
                    let scope = if projects.is_empty() {
                        "all projects".to_string()
                    } else {
                        format!("projects {}", projects.join(", "))
                    };
                    eprintln!(
                        "key {:?} ({}) created for {scope}; it is shown once, keep it now:",
                        created.name,
                        role.as_str()
                    );
                    println!("{}", created.key);
                }
                KeysAction::List => {
                    let keys = leadql::access::list(&db).await?;
                    if keys.is_empty() {
                        println!("no keys: the GraphQL API is open (create one with `leadql keys create`)");
                    }
                    let time = |ms: Option<i64>| {
                        ms.and_then(chrono::DateTime::from_timestamp_millis)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
                            .unwrap_or_else(|| "-".into())
                    };
                    for k in keys {
                        let scope = k
                            .projects
                            .and_then(|p| serde_json::from_value::<Vec<String>>(p).ok())
                            .map(|p| p.join(","))
                            .unwrap_or_else(|| "all projects".into());
                        println!(
                            "{}\t{}…\t{}\t{}\tcreated {}\tlast used {}{}",
                            k.name,
                            k.prefix,
                            scope,
                            k.role,
                            time(Some(k.created_at)),
                            time(k.last_used_at),
                            k.revoked_at
                                .map(|t| format!("\trevoked {}", time(Some(t))))
                                .unwrap_or_default()
                        );
                    }
                }
                KeysAction::Revoke { name } => match leadql::access::revoke(&db, &name).await {
                    Ok(()) => println!("key {name:?} revoked"),
                    Err(leadql::access::KeyError::Invalid(why)) => {
                        eprintln!("error: {why}");
                        return Ok(ExitCode::from(2));
                    }
                    Err(err) => return Err(err.into()),
                },
            }
        }
        Command::Migrate { database_url } => {
            let db = store::connect(&database_url).await?;
            store::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::Import {
            files,
            database_url,
            ingest_batch,
            callbacks,
        } => {
            let state = AppState::open(Config {
                callbacks,
                ingest_batch,
                bulk: true,
                ..Config::for_database(database_url)
            })
            .await?;
            let mut total = leadql::import::ImportSummary::default();
            for file in &files {
                let bodies = leadql::import::open(file)?;
                let started = std::time::Instant::now();
                let summary =
                    leadql::import::import(&state, bodies, std::io::stderr().is_terminal()).await?;
                let count = summary.total();
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "{}: {summary} ({count} payloads in {secs:.1}s, {:.0}/s)",
                    file.display(),
                    count as f64 / secs.max(1e-9)
                );
                total.stored += summary.stored;
                total.duplicate += summary.duplicate;
                total.stale += summary.stale;
                total.rejected += summary.rejected;
                total.failed += summary.failed;
            }
            // A bulk load leaves the planner's statistics (and on PostgreSQL
            // the visibility map that index-only scans rely on) behind.
            if total.stored > 0 {
                let started = std::time::Instant::now();
                store::refresh_statistics(&state.db).await?;
                eprintln!(
                    "statistics refreshed in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            println!("{total}");
            if total.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Reproject {
            database_url,
            callbacks,
        } => {
            let db = store::connect(&database_url).await?;
            store::migrate(&db).await?;
            let summary = store::reproject(&db, &callbacks.rules(), |_| {}).await?;
            println!(
                "replayed {} deliveries into {} leads ({} no longer readable)",
                summary.replayed, summary.leads, summary.unreadable
            );
            if summary.kept_leads > 0 {
                println!(
                    "kept {} leads as they were: {} of the deliveries' bodies were pruned, \
                     so those leads cannot be rebuilt from the log",
                    summary.kept_leads, summary.pruned
                );
            }
        }
        Command::Prune {
            deliveries_older_than,
            rejected_older_than,
            database_url,
        } => {
            let db = store::connect(&database_url).await?;
            store::migrate(&db).await?;
            let retention = store::Retention {
                deliveries: deliveries_older_than,
                rejected: rejected_older_than,
            };
            let summary = store::prune(&db, retention, store::now_ms(), 0).await?;
            if deliveries_older_than.is_some() {
                println!(
                    "pruned the bodies of {} deliveries ({:.1} MiB); their projections are kept",
                    summary.deliveries,
                    summary.bytes as f64 / (1024.0 * 1024.0)
                );
            }
            if rejected_older_than.is_some() {
                println!("deleted {} rejected deliveries", summary.rejected);
            }
        }
        Command::Rejected {
            replay,
            database_url,
            callbacks,
        } => {
            let state = AppState::open(Config {
                callbacks,
                ..Config::for_database(database_url)
            })
            .await?;
            if replay {
                let summary = leadql::import::replay_rejected(&state).await?;
                println!(
                    "accepted {}, still rejected {}",
                    summary.accepted, summary.still_rejected
                );
            } else {
                for r in store::pending_rejections(&state.db).await? {
                    let at =
                        chrono::DateTime::from_timestamp_millis(r.received_at).unwrap_or_default();
                    println!(
                        "{}\t{}\t{}\t{}\t{} bytes",
                        r.id,
                        at.to_rfc3339(),
                        r.status,
                        r.message,
                        r.body.len()
                    );
                }
            }
        }
        Command::Generate {
            leads,
            seed,
            output,
        } => {
            let written = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    let n = leadql::generate::write_ndjson(leads, seed, &mut file)?;
                    std::io::Write::flush(&mut file)?;
                    n
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    let n = leadql::generate::write_ndjson(leads, seed, &mut out)?;
                    std::io::Write::flush(&mut out)?;
                    n
                }
            };
            eprintln!("wrote {written} payloads for {leads} leads");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight deliveries");
}
