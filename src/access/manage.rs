//! Making, listing and revoking keys (`leadql keys`).

use super::hash;
use base64::Engine;
use entity::api_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter,
    QueryOrder, Set,
};

/// A new key: its name, scope and the key itself (shown once).
pub struct Created {
    pub name: String,
    pub key: String,
}

/// Make a key named `name`, seeing `projects` (empty: all).
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    projects: &[String],
) -> Result<Created, KeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(KeyError::Invalid("a key needs a name".into()));
    }
    if api_key::Entity::find()
        .filter(api_key::Column::Name.eq(name))
        .one(db)
        .await?
        .is_some()
    {
        return Err(KeyError::Invalid(format!(
            "a key named {name:?} exists already (revoked keys keep their names)"
        )));
    }
    let bytes: [u8; 32] = rand::random();
    let key = format!(
        "lql_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let projects = (!projects.is_empty()).then(|| serde_json::json!(projects));
    api_key::ActiveModel {
        id: NotSet,
        name: Set(name.to_string()),
        key_hash: Set(hash(&key)),
        prefix: Set(key[..8].to_string()),
        projects: Set(projects),
        created_at: Set(crate::store::now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Created {
        name: name.to_string(),
        key,
    })
}

/// Every key, newest first (revoked ones too).
pub async fn list(db: &DatabaseConnection) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await
}

/// Revoke the key named `name`.
pub async fn revoke(db: &DatabaseConnection, name: &str) -> Result<(), KeyError> {
    let result = api_key::Entity::update_many()
        .col_expr(
            api_key::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(crate::store::now_ms()),
        )
        .filter(api_key::Column::Name.eq(name))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(KeyError::Invalid(format!("no active key named {name:?}")));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}
