//! `orderBy` inputs: an enum of sortable fields and a direction per list,
//! turned into sort keys (always ending with the table's unique key).

use super::page::{KeyPart, SortKey};
use async_graphql::{Enum, InputObject};
use entity::{activity, analysis, conversation, disposition_event, lead, message, tool_call};
use serde_json::{json, Value};

/// Sort direction.
#[derive(Enum, Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrderDirection {
    /// Smallest first (null first).
    #[default]
    Asc,
    /// Largest first (null last).
    Desc,
}

impl OrderDirection {
    fn desc(self) -> bool {
        self == OrderDirection::Desc
    }
}

macro_rules! order_input {
    ($input:ident, $field:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(InputObject, Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $input {
            /// The field to sort by.
            pub field: $field,
            /// ASC (the default) or DESC.
            #[graphql(default)]
            pub direction: OrderDirection,
        }
    };
}

/// Fields leads can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeadOrderField {
    /// Time of the newest activity.
    LastActivityAt,
    /// Time of the oldest activity.
    FirstActivityAt,
    Name,
    ActivityCount,
    Id,
}
order_input!(
    LeadOrderBy,
    LeadOrderField,
    "How to sort leads; ties are broken by id. Default: LAST_ACTIVITY_AT DESC."
);

/// Fields activities can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActivityOrderField {
    Timestamp,
    Id,
}
order_input!(
    ActivityOrderBy,
    ActivityOrderField,
    "How to sort activities; ties are broken by id. Default: TIMESTAMP ASC."
);

/// Fields conversations can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConversationOrderField {
    /// The time of the conversation's activity.
    Timestamp,
}
order_input!(
    ConversationOrderBy,
    ConversationOrderField,
    "How to sort conversations; ties are broken by activity id. Default: TIMESTAMP ASC."
);

/// Fields analyses can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnalysisOrderField {
    /// The time of the analysed activity.
    ActivityTimestamp,
}
order_input!(
    AnalysisOrderBy,
    AnalysisOrderField,
    "How to sort analyses; ties are broken by activity id. Default: ACTIVITY_TIMESTAMP ASC."
);

/// Fields tool calls can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ToolCallOrderField {
    Timestamp,
    Name,
}
order_input!(
    ToolCallOrderBy,
    ToolCallOrderField,
    "How to sort tool calls; ties are broken by activity and position. Default: TIMESTAMP ASC."
);

fn part<E: sea_orm::EntityTrait>(
    name: &'static str,
    col: E::Column,
    desc: bool,
    nullable: bool,
    get: fn(&E::Model) -> Value,
) -> KeyPart<E> {
    KeyPart {
        name,
        col,
        desc,
        nullable,
        get,
    }
}

pub fn lead_key(order: Option<&[LeadOrderBy]>) -> SortKey<lead::Entity> {
    use lead::Column as C;
    let order = match order {
        Some(o) if !o.is_empty() => o.to_vec(),
        _ => vec![LeadOrderBy {
            field: LeadOrderField::LastActivityAt,
            direction: OrderDirection::Desc,
        }],
    };
    let parts = order
        .iter()
        .map(|o| {
            let d = o.direction.desc();
            match o.field {
                LeadOrderField::LastActivityAt => part(
                    "lastActivityAt",
                    C::LastActivityAt,
                    d,
                    true,
                    |m: &lead::Model| json!(m.last_activity_at),
                ),
                LeadOrderField::FirstActivityAt => part(
                    "firstActivityAt",
                    C::FirstActivityAt,
                    d,
                    true,
                    |m: &lead::Model| json!(m.first_activity_at),
                ),
                LeadOrderField::Name => {
                    part("name", C::Name, d, true, |m: &lead::Model| json!(m.name))
                }
                LeadOrderField::ActivityCount => part(
                    "activityCount",
                    C::ActivityCount,
                    d,
                    false,
                    |m: &lead::Model| json!(m.activity_count),
                ),
                LeadOrderField::Id => part("id", C::Id, d, false, |m: &lead::Model| json!(m.id)),
            }
        })
        .collect();
    SortKey::new(
        parts,
        vec![part("id", C::Id, false, false, |m: &lead::Model| {
            json!(m.id)
        })],
    )
}

pub fn activity_key(order: Option<&[ActivityOrderBy]>) -> SortKey<activity::Entity> {
    use activity::Column as C;
    let parts = order
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let d = o.direction.desc();
            match o.field {
                ActivityOrderField::Timestamp => part(
                    "timestamp",
                    C::Timestamp,
                    d,
                    false,
                    |m: &activity::Model| json!(m.timestamp),
                ),
                ActivityOrderField::Id => {
                    part("id", C::Id, d, false, |m: &activity::Model| json!(m.id))
                }
            }
        })
        .collect::<Vec<_>>();
    let parts = if parts.is_empty() {
        vec![part(
            "timestamp",
            C::Timestamp,
            false,
            false,
            |m: &activity::Model| json!(m.timestamp),
        )]
    } else {
        parts
    };
    SortKey::new(
        parts,
        vec![part("id", C::Id, false, false, |m: &activity::Model| {
            json!(m.id)
        })],
    )
}

pub fn conversation_key(order: Option<&[ConversationOrderBy]>) -> SortKey<conversation::Entity> {
    use conversation::Column as C;
    let desc = order
        .and_then(|o| o.first())
        .map(|o| o.direction.desc())
        .unwrap_or(false);
    SortKey::new(
        vec![part(
            "timestamp",
            C::Timestamp,
            desc,
            false,
            |m: &conversation::Model| json!(m.timestamp),
        )],
        vec![part(
            "activityId",
            C::ActivityId,
            false,
            false,
            |m: &conversation::Model| json!(m.activity_id),
        )],
    )
}

pub fn analysis_key(order: Option<&[AnalysisOrderBy]>) -> SortKey<analysis::Entity> {
    use analysis::Column as C;
    let desc = order
        .and_then(|o| o.first())
        .map(|o| o.direction.desc())
        .unwrap_or(false);
    SortKey::new(
        vec![part(
            "activityTimestamp",
            C::ActivityTimestamp,
            desc,
            false,
            |m: &analysis::Model| json!(m.activity_timestamp),
        )],
        vec![part(
            "activityId",
            C::ActivityId,
            false,
            false,
            |m: &analysis::Model| json!(m.activity_id),
        )],
    )
}

pub fn tool_call_key(order: Option<&[ToolCallOrderBy]>) -> SortKey<tool_call::Entity> {
    use tool_call::Column as C;
    let parts = order
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let d = o.direction.desc();
            match o.field {
                ToolCallOrderField::Timestamp => part(
                    "timestamp",
                    C::Timestamp,
                    d,
                    true,
                    |m: &tool_call::Model| json!(m.timestamp),
                ),
                ToolCallOrderField::Name => {
                    part("name", C::Name, d, false, |m: &tool_call::Model| {
                        json!(m.name)
                    })
                }
            }
        })
        .collect::<Vec<_>>();
    let parts = if parts.is_empty() {
        vec![part(
            "timestamp",
            C::Timestamp,
            false,
            true,
            |m: &tool_call::Model| json!(m.timestamp),
        )]
    } else {
        parts
    };
    SortKey::new(
        parts,
        vec![
            part(
                "activityId",
                C::ActivityId,
                false,
                false,
                |m: &tool_call::Model| json!(m.activity_id),
            ),
            part(
                "position",
                C::Position,
                false,
                false,
                |m: &tool_call::Model| json!(m.position),
            ),
        ],
    )
}

pub fn message_key() -> SortKey<message::Entity> {
    use message::Column as C;
    SortKey::new(
        vec![part(
            "position",
            C::Position,
            false,
            false,
            |m: &message::Model| json!(m.position),
        )],
        vec![part(
            "activityId",
            C::ActivityId,
            false,
            false,
            |m: &message::Model| json!(m.activity_id),
        )],
    )
}

pub fn event_key() -> SortKey<disposition_event::Entity> {
    use disposition_event::Column as C;
    SortKey::new(
        vec![part(
            "id",
            C::Id,
            false,
            false,
            |m: &disposition_event::Model| json!(m.id),
        )],
        vec![],
    )
}
