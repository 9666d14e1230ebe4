//! The ordered list of leadql's schema migrations. Run at `leadql serve`
//! start and by `leadql migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261126_000002_search_and_sort;
mod m20261126_000003_api_keys;
mod m20261126_000004_covering_lead_page;
mod m20261201_000005_activity_language;
mod m20261201_000006_sqlite_case_index;
mod m20261201_000007_api_key_role;
mod m20261206_000008_activity_events;
mod m20261207_000009_callbacks;
mod m20261208_000010_delivery_retention;
mod m20261209_000011_activity_rollups;
mod m20261209_000012_lead_rollups;
mod m20261210_000013_covering_variables;
mod m20261210_000014_call_rollups;
mod m20261211_000015_sqlite_activities_rowid;
mod m20261211_000016_activity_rollup_names;
mod m20261211_000017_covering_call_filters;
mod m20261212_000018_lead_name_trigrams;
mod m20261212_000019_variables_by_project;
mod m20261213_000020_variable_rollups;
mod m20261214_000021_ordered_rollup_keys;

pub struct Migrator;

/// Run `statements` as one script, so one connection runs them all: on
/// SQLite another pooled connection would still see an index the script
/// dropped when preparing the statement after it.
async fn script(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::ConnectionTrait;
    manager
        .get_connection()
        .execute_unprepared(&statements.join(";\n"))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261126_000002_search_and_sort::Migration),
            Box::new(m20261126_000003_api_keys::Migration),
            Box::new(m20261126_000004_covering_lead_page::Migration),
            Box::new(m20261201_000005_activity_language::Migration),
            Box::new(m20261201_000006_sqlite_case_index::Migration),
            Box::new(m20261201_000007_api_key_role::Migration),
            Box::new(m20261206_000008_activity_events::Migration),
            Box::new(m20261207_000009_callbacks::Migration),
            Box::new(m20261208_000010_delivery_retention::Migration),
            Box::new(m20261209_000011_activity_rollups::Migration),
            Box::new(m20261209_000012_lead_rollups::Migration),
            Box::new(m20261210_000013_covering_variables::Migration),
            Box::new(m20261210_000014_call_rollups::Migration),
            Box::new(m20261211_000015_sqlite_activities_rowid::Migration),
            Box::new(m20261211_000016_activity_rollup_names::Migration),
            Box::new(m20261211_000017_covering_call_filters::Migration),
            Box::new(m20261212_000018_lead_name_trigrams::Migration),
            Box::new(m20261212_000019_variables_by_project::Migration),
            Box::new(m20261213_000020_variable_rollups::Migration),
            Box::new(m20261214_000021_ordered_rollup_keys::Migration),
        ]
    }
}
