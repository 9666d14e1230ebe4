//! `orderBy` inputs: a direction, and per list an input pairing it with
//! the list's enum of sortable fields (declared with the resource).

use async_graphql::Enum;

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
    pub fn desc(self) -> bool {
        self == OrderDirection::Desc
    }
}

/// Declare `$input`, an `orderBy` entry of the fields `$field` of the
/// table `entity::$entity`.
macro_rules! order_input {
    ($input:ident, $field:ident, $entity:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(async_graphql::InputObject, Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $input {
            /// The field to sort by.
            pub field: $field,
            /// ASC (the default) or DESC.
            #[graphql(default)]
            pub direction: $crate::graphql::engine::order::OrderDirection,
        }

        impl $input {
            /// This entry as a part of a sort key.
            pub fn part(&self) -> $crate::graphql::engine::page::KeyPart<entity::$entity::Entity> {
                self.field.part(self.direction.desc())
            }
        }
    };
}
pub(crate) use order_input;
