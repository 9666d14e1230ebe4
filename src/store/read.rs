//! Every read the API makes starts here: [`Reader::find`] is the one place
//! that decides which rows of a table a caller may see.

use sea_orm::{DatabaseConnection, EntityTrait, Select};

/// A read handle for one request.
#[derive(Clone)]
pub struct Reader {
    db: DatabaseConnection,
}

impl Reader {
    pub fn new(db: DatabaseConnection) -> Self {
        Reader { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The rows of `E` this reader may see.
    pub fn find<E: EntityTrait>(&self) -> Select<E> {
        E::find()
    }
}
