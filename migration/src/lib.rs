//! The ordered list of leadql's schema migrations. Run at `leadql serve`
//! start and by `leadql migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261125_000001_create_tables::Migration)]
    }
}
