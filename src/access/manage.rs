//! Making, listing and revoking keys (`leadql keys`).

use super::hash;
use base64::Engine;
use entity::api_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

/// A new key: its name, scope and the key itself (shown once).
pub struct Created {
    pub name: String,
    pub key: String,
}

/// Make a key with `role` seeing `projects` (empty: all), named `name` or, without
/// one, `key-` and the key's first characters after `lql_` (what
/// `keys list` shows of it anyway). It works on every instance as soon as
/// this returns.
pub async fn create(
    db: &DatabaseConnection,
    name: Option<&str>,
    projects: &[String],
    role: super::Role,
) -> Result<Created, KeyError> {
    let given = name.map(str::trim);
    if given == Some("") {
        return Err(KeyError::Invalid("a key's name cannot be empty".into()));
    }
    let txn = db.begin().await?;
    let (name, key) = loop {
        let bytes: [u8; 32] = rand::random();
        let key = format!(
            "lql_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let name = match given {
            Some(name) => name.to_string(),
            None => format!("key-{}", &key[4..10]),
        };
        let taken = api_key::Entity::find()
            .filter(api_key::Column::Name.eq(&name))
            .one(&txn)
            .await?
            .is_some();
        match (taken, given) {
            (false, _) => break (name, key),
            (true, Some(_)) => {
                return Err(KeyError::Invalid(format!(
                    "a key named {name:?} exists already (revoked keys keep their names)"
                )))
            }
            // A generated name met an older one: draw another key.
            (true, None) => continue,
        }
    };
    let projects = (!projects.is_empty()).then(|| serde_json::json!(projects));
    api_key::ActiveModel {
        id: NotSet,
        name: Set(name.clone()),
        key_hash: Set(hash(&key)),
        prefix: Set(key[..8].to_string()),
        projects: Set(projects),
        role: Set(role.as_str().to_string()),
        created_at: Set(crate::store::now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    super::signal::announce(&txn).await?;
    txn.commit().await?;
    Ok(Created { name, key })
}

/// Every key, newest first (revoked ones too).
pub async fn list(db: &DatabaseConnection) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await
}

/// Revoke the key named `name`; every instance refuses it from then on
/// (within milliseconds: see [`super::signal`]).
pub async fn revoke(db: &DatabaseConnection, name: &str) -> Result<(), KeyError> {
    let txn = db.begin().await?;
    let result = api_key::Entity::update_many()
        .col_expr(
            api_key::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(crate::store::now_ms()),
        )
        .filter(api_key::Column::Name.eq(name))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(KeyError::Invalid(format!("no active key named {name:?}")));
    }
    super::signal::announce(&txn).await?;
    txn.commit().await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}
