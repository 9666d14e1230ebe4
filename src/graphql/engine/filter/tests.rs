//! The fold of filter trees and each operator's SQL.

use super::*;
use crate::access::Role;
use crate::graphql::resources::activity::{ActivityFilter, VariableFilter};
use crate::graphql::resources::lead::LeadFilter;
use entity::{activity, lead};

fn s(eq: &str) -> StringFilter {
    StringFilter {
        eq: Some(eq.into()),
        ..Default::default()
    }
}

/// The SQL of `f`'s condition on `backend`, for a reader of every field.
fn rendered<E: EntityTrait + Default>(f: &impl Filter, backend: DbBackend) -> String {
    render::<E>(condition(f, backend, Role::Full).unwrap(), backend)
}

#[test]
fn no_filter_is_no_condition() {
    let sql = rendered::<lead::Entity>(&LeadFilter::default(), DbBackend::Sqlite);
    assert_eq!(sql, "TRUE");
}

#[test]
fn fields_and_and_all_hold() {
    let f = LeadFilter {
        project_id: Some(s("P")),
        and: Some(vec![LeadFilter {
            state: Some(s("done")),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let sql = rendered::<lead::Entity>(&f, DbBackend::Sqlite);
    assert_eq!(
        sql,
        r#""leads"."project_id" = 'P' AND "leads"."state" = 'done'"#
    );
}

#[test]
fn or_needs_one_and_not_negates() {
    let f = LeadFilter {
        or: Some(vec![
            LeadFilter {
                name: Some(s("a")),
                ..Default::default()
            },
            LeadFilter {
                name: Some(s("b")),
                ..Default::default()
            },
        ]),
        not: Some(Box::new(LeadFilter {
            state: Some(s("x")),
            ..Default::default()
        })),
        ..Default::default()
    };
    let sql = rendered::<lead::Entity>(&f, DbBackend::Sqlite);
    assert_eq!(
        sql,
        r#"("leads"."name" = 'a' OR "leads"."name" = 'b') AND (NOT "leads"."state" = 'x')"#
    );
}

#[test]
fn empty_or_adds_nothing() {
    let f = LeadFilter {
        or: Some(vec![]),
        ..Default::default()
    };
    let sql = rendered::<lead::Entity>(&f, DbBackend::Sqlite);
    assert_eq!(sql, "TRUE");
}

#[test]
fn operators_of_a_string_filter() {
    let f = StringFilter {
        ne: Some("a".into()),
        r#in: Some(vec!["b".into(), "c".into()]),
        not_in: Some(vec!["d".into()]),
        contains: Some("50%_off\\".into()),
        starts_with: Some("St".into()),
        is_null: Some(false),
        ..Default::default()
    };
    let sql = render::<lead::Entity>(
        string(lead::Column::Name, &f, false, DbBackend::Sqlite),
        DbBackend::Sqlite,
    );
    assert_eq!(
        sql,
        r#""leads"."name" <> 'a' AND "leads"."name" IN ('b', 'c') AND "leads"."name" NOT IN ('d') AND "leads"."name" IS NOT NULL AND leadql_lower("leads"."name") LIKE '%50\%\_off\\%' ESCAPE '\' AND leadql_lower("leads"."name") LIKE 'st%' ESCAPE '\' AND "leads"."name" IS NOT NULL"#
    );
    let pg_contains = |text: &str| {
        let f = StringFilter {
            contains: Some(text.into()),
            ..Default::default()
        };
        render::<lead::Entity>(
            string(lead::Column::Name, &f, false, DbBackend::Postgres),
            DbBackend::Postgres,
        )
    };
    // One letter has no trigram: compared so that no index is read whole.
    assert_eq!(pg_contains("x"), r#"("leads"."name" || '') ILIKE '%x%'"#);
    assert_eq!(pg_contains("Khan"), r#""leads"."name" ILIKE '%Khan%'"#);
}

#[test]
fn a_pattern_has_a_trigram_with_three_letters_or_digits_in_a_row() {
    use super::has_trigram;
    for (pattern, trigram) in [
        ("%an%", false),
        ("%Kha%", true),
        ("%a b c%", false),
        ("%ab\\%c%", false),
        ("%ab\\%cde%", true),
        ("%42_7%", false),
        ("%427%", true),
        ("%राहुल%", true),
        ("%%", false),
    ] {
        assert_eq!(has_trigram(pattern), trigram, "{pattern}");
    }
}

#[test]
fn dispositions_compare_ignoring_case() {
    let f = LeadFilter {
        disposition_type: Some(s("Positive")),
        ..Default::default()
    };
    let sql = rendered::<lead::Entity>(&f, DbBackend::Sqlite);
    assert_eq!(
        sql,
        r#"leadql_lower("leads"."disposition_type") = 'positive'"#
    );
    let sql = rendered::<lead::Entity>(&f, DbBackend::Postgres);
    assert_eq!(sql, r#"LOWER("leads"."disposition_type") = 'positive'"#);
}

#[test]
fn times_compare_as_epoch_milliseconds() {
    let t: DateTime<Utc> = "2026-01-12T04:55:59.048Z".parse().unwrap();
    let f = DateTimeFilter {
        gte: Some(t),
        lt: Some(t),
        is_null: Some(true),
        ..Default::default()
    };
    let sql = render::<lead::Entity>(
        datetime(lead::Column::LastActivityAt, &f),
        DbBackend::Sqlite,
    );
    assert_eq!(
        sql,
        r#""leads"."last_activity_at" >= 1768193759048 AND "leads"."last_activity_at" < 1768193759048 AND "leads"."last_activity_at" IS NULL"#
    );
}

#[test]
fn int_and_boolean_operators() {
    let f = IntFilter {
        eq: Some(1),
        ne: Some(2),
        r#in: Some(vec![3, 4]),
        gt: Some(5),
        gte: Some(6),
        lt: Some(7),
        lte: Some(8),
        is_null: Some(false),
    };
    let sql = render::<lead::Entity>(int(lead::Column::ActivityCount, &f), DbBackend::Sqlite);
    assert_eq!(
        sql,
        r#""leads"."activity_count" = 1 AND "leads"."activity_count" <> 2 AND "leads"."activity_count" IN (3, 4) AND "leads"."activity_count" > 5 AND "leads"."activity_count" >= 6 AND "leads"."activity_count" < 7 AND "leads"."activity_count" <= 8 AND "leads"."activity_count" IS NOT NULL"#
    );
    let b = BooleanFilter {
        eq: Some(true),
        is_null: None,
    };
    let sql = render::<activity::Entity>(
        boolean(activity::Column::IsConnected, &b),
        DbBackend::Sqlite,
    );
    assert_eq!(sql, r#""activities"."is_connected" = TRUE"#);
}

#[test]
fn variables_filter_through_the_variables_table() {
    let f = ActivityFilter {
        variable: Some(VariableFilter {
            name: "Urgency".into(),
            eq: Some("Very Urgent".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sql = rendered::<activity::Entity>(&f, DbBackend::Sqlite);
    assert_eq!(
        sql,
        r#""activities"."id" IN (SELECT "activity_id" FROM "variables" WHERE "variables"."name" = 'Urgency' AND "value_text" = 'Very Urgent')"#
    );
}

#[test]
fn a_project_beside_a_variable_is_also_asked_of_the_variables() {
    let f = ActivityFilter {
        project_id: Some(s("P")),
        variable: Some(VariableFilter {
            name: "Urgency".into(),
            eq: Some("None".into()),
            ..Default::default()
        }),
        or: Some(vec![ActivityFilter {
            variable: Some(VariableFilter {
                name: "Urgency".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let sql = rendered::<activity::Entity>(&f, DbBackend::Sqlite);
    // Only at the project's own level: the `or` branch has no project.
    assert_eq!(
        sql,
        r#""activities"."project_id" = 'P' AND "activities"."id" IN (SELECT "activity_id" FROM "variables" WHERE "variables"."name" = 'Urgency' AND "variables"."project_id" = 'P' AND "value_text" = 'None') AND "activities"."id" IN (SELECT "activity_id" FROM "variables" WHERE "variables"."name" = 'Urgency')"#
    );
}

#[test]
fn too_deep_a_filter_is_refused() {
    let mut f = LeadFilter::default();
    for _ in 0..MAX_FILTER_DEPTH {
        f = LeadFilter {
            not: Some(Box::new(f)),
            ..Default::default()
        };
    }
    let err = condition(&f, DbBackend::Sqlite, Role::Full).unwrap_err();
    assert!(err.message.contains("deeper than 16"), "{}", err.message);
}
