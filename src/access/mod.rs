//! API keys: who may query, and which projects they see.
//!
//! A key is `lql_` and 43 random base64url characters (256 bits); only its
//! SHA-256 is stored. Keys live in the database, so every instance (and the
//! `leadql keys` command) shares them; each instance keeps the active ones
//! in memory and reloads them every two seconds, so a revocation takes
//! effect everywhere within that time, open subscriptions included. A key
//! presented while an instance knows of no key is looked up at once (see
//! [`Keys::authorize`]): the open API is never what a key gets.
//!
//! With no key created yet the API is open: the first run stays one
//! command. Once a key was made it stays closed, even if every key is
//! revoked. Webhook authentication is separate: its secret is not a key.

use entity::api_key;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

mod manage;
pub use manage::{create, list, revoke, Created, KeyError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What a request may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The key's name; None when the API is open (no keys exist).
    pub key: Option<String>,
    key_hash: Option<String>,
    /// Projects it may see; None: all of them.
    pub projects: Option<Arc<Vec<String>>>,
}

impl Access {
    /// Everything (no keys exist, or internal use).
    pub fn open() -> Access {
        Access {
            key: None,
            key_hash: None,
            projects: None,
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
}

/// The active keys, shared by an instance's requests.
#[derive(Clone)]
pub struct Keys {
    inner: Arc<RwLock<KeySet>>,
    db: DatabaseConnection,
}

#[derive(Default)]
struct KeySet {
    active: HashMap<String, Active>,
    /// A key was ever made (revoked ones count): the API is closed.
    any: bool,
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
        };
        keys.reload().await?;
        if keys.is_open() {
            tracing::warn!("no API keys exist: the GraphQL API is open to anyone who can reach it; create one with `leadql keys create --name NAME`");
        }
        let weak = Arc::downgrade(&keys.inner);
        let db = keys.db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let keys = Keys {
                    inner,
                    db: db.clone(),
                };
                if let Err(err) = keys.reload().await {
                    tracing::warn!(error = %err, "reloading API keys failed; keeping the last known set");
                }
            }
        });
        Ok(keys)
    }

    /// Read the active keys now (they are also read every two seconds).
    pub async fn reload(&self) -> Result<(), DbErr> {
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
            active.insert(
                k.key_hash,
                Active {
                    name: k.name,
                    projects,
                },
            );
        }
        if let Ok(mut inner) = self.inner.write() {
            *inner = KeySet { active, any };
        }
        Ok(())
    }

    /// No key was ever made: the API is open.
    pub fn is_open(&self) -> bool {
        self.inner.read().map(|m| !m.any).unwrap_or(false)
    }

    /// Check an `Authorization` header value (None: absent).
    ///
    /// A key presented while this instance knows of no key at all (the API
    /// looks open) is looked up first: it may have been made a moment ago,
    /// and answering it as the open API would show it every project.
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<Access, Refusal> {
        if authorization.is_some() && self.is_open() {
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %err, "reading API keys failed; keeping the last known set");
            }
        }
        self.authenticate(authorization)
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
