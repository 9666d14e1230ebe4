//! API keys: who may query, and which projects they see.
//!
//! A key is `lql_` and 43 random base64url characters (256 bits); only its
//! SHA-256 is stored. Keys live in the database, so every instance (and the
//! `leadql keys` command) shares them; each instance keeps the active ones
//! in memory. A change is announced to every instance at once
//! ([`signal`]: NOTIFY on PostgreSQL, a generation number in the SQLite
//! header), and each instance also rereads the keys every two seconds in
//! case an announcement was missed. A revocation takes effect within
//! milliseconds, open subscriptions included (they are checked every
//! second). A key this instance does not know yet is looked up before it
//! is refused, so a key works the moment `leadql keys create` returns; and
//! the first key closes the open API at once (see [`Keys::authorize`]).
//!
//! With no key created yet the API is open: the first run stays one
//! command. Once a key was made it stays closed, even if every key is
//! revoked. Webhook authentication is separate: its secret is not a key.

use entity::api_key;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

mod manage;
mod role;
pub use role::{forbidden, reads_personal_data, Role};
pub mod signal;
pub use manage::{create, list, revoke, Created, KeyError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a request may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The key's name; None when the API is open (no keys exist).
    pub key: Option<String>,
    key_hash: Option<String>,
    /// Projects it may see; None: all of them.
    pub projects: Option<Arc<Vec<String>>>,
    /// What it may read in them.
    pub role: Role,
}

impl Access {
    /// Everything (no keys exist, or internal use).
    pub fn open() -> Access {
        Access {
            key: None,
            key_hash: None,
            projects: None,
            role: Role::Full,
        }
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Unknown,
    /// A key that was valid when the connection began no longer is.
    Revoked,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Missing => "an API key is required: send `Authorization: Bearer <key>` (create one with `leadql keys create`)",
            Refusal::Malformed => "the Authorization header must be `Bearer <key>`",
            Refusal::Unknown => "this API key is not valid (unknown or revoked)",
            Refusal::Revoked => "the API key was revoked",
        }
    }
}

struct Active {
    name: String,
    projects: Option<Arc<Vec<String>>>,
    role: Role,
}

/// The active keys, shared by an instance's requests.
#[derive(Clone)]
pub struct Keys {
    inner: Arc<RwLock<KeySet>>,
    db: DatabaseConnection,
    /// Serialises the reloads requests ask for; holds when the last one
    /// began, so requests that arrived before it share it.
    asked: Arc<tokio::sync::Mutex<Option<Instant>>>,
    /// Numbers reloads in the order they begin (see [`Keys::reload`]).
    reloads: Arc<AtomicU64>,
}

#[derive(Default)]
struct KeySet {
    active: HashMap<String, Active>,
    /// A key was ever made (revoked ones count): the API is closed.
    any: bool,
    /// The generation these keys were read at ([`signal::generation`]).
    generation: i32,
    /// The number of the reload that read them.
    reload: u64,
}

impl KeySet {
    /// Take `read` unless these keys came from a reload that began later.
    fn keep_newer(&mut self, read: KeySet) {
        if read.reload > self.reload {
            *self = read;
        }
    }
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Keys {
    /// Load the active keys and keep them fresh.
    pub async fn start(db: DatabaseConnection) -> Result<Keys, DbErr> {
        let keys = Keys {
            inner: Arc::new(RwLock::new(KeySet::default())),
            db,
            asked: Default::default(),
            reloads: Default::default(),
        };
        keys.reload().await?;
        if keys.is_open() {
            tracing::warn!("no API keys exist: the GraphQL API is open to anyone who can reach it; create one with `leadql keys create`");
        }
        tokio::spawn(poll(keys.weak()));
        if keys.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            tokio::spawn(listen(keys.weak()));
        }
        Ok(keys)
    }

    fn weak(&self) -> WeakKeys {
        WeakKeys {
            inner: Arc::downgrade(&self.inner),
            asked: Arc::downgrade(&self.asked),
            reloads: Arc::downgrade(&self.reloads),
            db: self.db.clone(),
        }
    }

    /// Read the active keys now: when this returns, the set in memory holds
    /// every change committed before it was called.
    ///
    /// Reloads run concurrently (the poll, the LISTEN task, requests), and
    /// one that began earlier may finish later with an older read; so a
    /// reload keeps its result only if no reload that began after it has
    /// stored one already.
    pub async fn reload(&self) -> Result<(), DbErr> {
        let number = self.reloads.fetch_add(1, Ordering::SeqCst) + 1;
        // The generation first: a change after it is seen next time.
        let generation = signal::generation(&self.db).await?;
        let rows = api_key::Entity::find().all(&self.db).await?;
        let any = !rows.is_empty();
        let mut active = HashMap::new();
        for k in rows.into_iter().filter(|k| k.revoked_at.is_none()) {
            let projects = match k.projects {
                None => None,
                Some(value) => match serde_json::from_value::<Vec<String>>(value) {
                    Ok(projects) => Some(Arc::new(projects)),
                    // A scope that cannot be read must not become "every
                    // project": the key is refused until it is fixed.
                    Err(err) => {
                        tracing::error!(key = %k.name, error = %err, "API key with an unreadable project list; refusing it");
                        continue;
                    }
                },
            };
            // Nor may a role this version does not know become `full`.
            let Some(role) = Role::parse(&k.role) else {
                tracing::error!(key = %k.name, role = %k.role, "API key with an unknown role; refusing it");
                continue;
            };
            active.insert(
                k.key_hash,
                Active {
                    name: k.name,
                    projects,
                    role,
                },
            );
        }
        if let Ok(mut inner) = self.inner.write() {
            inner.keep_newer(KeySet {
                active,
                any,
                generation,
                reload: number,
            });
        }
        Ok(())
    }

    /// No key was ever made: the API is open.
    pub fn is_open(&self) -> bool {
        self.inner.read().map(|m| !m.any).unwrap_or(false)
    }

    /// Check an `Authorization` header value (None: absent).
    ///
    /// While the API is open, every request on SQLite first checks the
    /// keys' generation, so the first key closes the API for the very next
    /// request (on PostgreSQL, as soon as its NOTIFY arrives: within
    /// milliseconds). A key this instance does not know is looked up before
    /// it is refused: it may have been made a moment ago; so a key is never
    /// answered as the open API either.
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<Access, Refusal> {
        let arrived = Instant::now();
        if self.is_open() {
            if authorization.is_some() {
                // Answering a key as the open API would show it every
                // project: look it up first.
                self.reload_after(arrived).await;
            } else {
                self.refresh(arrived).await;
            }
        }
        match self.authenticate(authorization) {
            Err(Refusal::Unknown) => {
                self.reload_after(arrived).await;
                self.authenticate(authorization)
            }
            answer => answer,
        }
    }

    /// SQLite: reload if the generation moved. PostgreSQL needs no check
    /// per request: the NOTIFY of a change reaches this instance within
    /// milliseconds of the command's commit, and a statement per request
    /// while the API is open would cost every request a round trip.
    async fn refresh(&self, arrived: Instant) {
        match self.generation_moved().await {
            Ok(true) => self.reload_after(arrived).await,
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "reading the keys' generation failed"),
        }
    }

    /// SQLite: the keys' generation differs from the one last read (a key
    /// was made or revoked since). Elsewhere always false: there is no
    /// generation to read (0), changes come by NOTIFY.
    async fn generation_moved(&self) -> Result<bool, DbErr> {
        let now = signal::generation(&self.db).await?;
        Ok(Some(now) != self.inner.read().ok().map(|k| k.generation))
    }

    /// Reload, unless a reload that began after `arrived` already ran: a
    /// burst of requests with unknown keys costs one read at a time.
    async fn reload_after(&self, arrived: Instant) {
        let mut last = self.asked.lock().await;
        if last.is_some_and(|began| began >= arrived) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(err) = self.reload().await {
            tracing::warn!(error = %err, "reading API keys failed; keeping the last known set");
        }
    }

    /// [`Keys::authorize`] against the keys as last read.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Access, Refusal> {
        if self.is_open() {
            return Ok(Access::open());
        }
        let value = authorization.ok_or(Refusal::Missing)?.trim();
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(Refusal::Malformed)?;
        let key_hash = hash(key);
        let inner = self.inner.read().map_err(|_| Refusal::Unknown)?;
        let active = inner.active.get(&key_hash).ok_or(Refusal::Unknown)?;
        self.touch(&key_hash);
        Ok(Access {
            key: Some(active.name.clone()),
            projects: active.projects.clone(),
            role: active.role,
            key_hash: Some(key_hash),
        })
    }

    /// Whether an access granted earlier still holds: its key is not
    /// revoked, or, granted while the API was open, it still is.
    pub fn recheck(&self, access: &Access) -> Result<(), Refusal> {
        match &access.key_hash {
            None if self.is_open() => Ok(()),
            None => Err(Refusal::Missing),
            Some(h) => {
                let known = self
                    .inner
                    .read()
                    .map(|m| m.active.contains_key(h))
                    .unwrap_or(false);
                if known {
                    Ok(())
                } else {
                    Err(Refusal::Revoked)
                }
            }
        }
    }

    /// Record the key's last use, at most once a minute per key.
    fn touch(&self, key_hash: &str) {
        static LAST: std::sync::LazyLock<std::sync::Mutex<HashMap<String, i64>>> =
            std::sync::LazyLock::new(Default::default);
        let now = crate::store::now_ms();
        {
            let Ok(mut last) = LAST.lock() else { return };
            if last.get(key_hash).is_some_and(|t| now - t < 60_000) {
                return;
            }
            last.insert(key_hash.to_string(), now);
        }
        let db = self.db.clone();
        let key_hash = key_hash.to_string();
        tokio::spawn(async move {
            let _ = api_key::Entity::update_many()
                .col_expr(
                    api_key::Column::LastUsedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(api_key::Column::KeyHash.eq(key_hash))
                .exec(&db)
                .await;
        });
    }
}

/// [`Keys`] for the background tasks, which end when the instance drops
/// its keys.
struct WeakKeys {
    inner: std::sync::Weak<RwLock<KeySet>>,
    asked: std::sync::Weak<tokio::sync::Mutex<Option<Instant>>>,
    reloads: std::sync::Weak<AtomicU64>,
    db: DatabaseConnection,
}

impl WeakKeys {
    fn upgrade(&self) -> Option<Keys> {
        Some(Keys {
            inner: self.inner.upgrade()?,
            asked: self.asked.upgrade()?,
            reloads: self.reloads.upgrade()?,
            db: self.db.clone(),
        })
    }
}

/// Reread the keys every two seconds, in case an announcement was missed;
/// on SQLite also check the generation four times a second.
async fn poll(keys: WeakKeys) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        let Some(keys) = keys.upgrade() else { return };
        let result = if ticks.is_multiple_of(8) {
            keys.reload().await
        } else {
            match keys.generation_moved().await {
                Ok(true) => keys.reload().await,
                Ok(false) => Ok(()),
                Err(err) => Err(err),
            }
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "reloading API keys failed; keeping the last known set");
        }
    }
}

/// PostgreSQL: LISTEN for key changes and reload on each; after
/// (re)connecting, reload once for whatever was missed.
async fn listen(keys: WeakKeys) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = keys.db.get_postgres_connection_pool().clone();
    let mut delay = Duration::from_millis(100);
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(signal::CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for key changes; retrying");
                if keys.upgrade().is_none() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        let mut reload = true;
        loop {
            if reload {
                let Some(k) = keys.upgrade() else { return };
                if let Err(err) = k.reload().await {
                    tracing::warn!(error = %err, "reloading API keys failed; keeping the last known set");
                }
            }
            // `try_recv` reports a lost connection instead of reconnecting
            // silently, so the reload above covers the gap.
            match listener.try_recv().await {
                Ok(Some(_)) => reload = true,
                Ok(None) => {
                    tracing::warn!("the LISTEN connection for key changes dropped; reconnecting");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the LISTEN connection for key changes failed; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_by(reload: u64, any: bool) -> KeySet {
        KeySet {
            any,
            reload,
            ..KeySet::default()
        }
    }

    #[test]
    fn a_reload_that_began_earlier_does_not_replace_a_later_one() {
        let mut keys = KeySet::default();
        keys.keep_newer(read_by(2, true));
        keys.keep_newer(read_by(1, false));
        assert_eq!((keys.reload, keys.any), (2, true));
        keys.keep_newer(read_by(3, false));
        assert_eq!((keys.reload, keys.any), (3, false));
    }
}
