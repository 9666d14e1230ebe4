//! Roles: what a key may read in the projects it sees.

/// `full` reads everything; `analyst` reads aggregates and every field
/// that is not personal data (fields marked `personal` in their resource's
/// declaration answer null with a `FORBIDDEN` error, and filters or search
/// over them are refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    #[default]
    Full,
    Analyst,
}

impl Role {
    /// The name stored and shown (`full`, `analyst`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::Analyst => "analyst",
        }
    }

    /// A stored name; None for one this version does not know.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "full" => Some(Role::Full),
            "analyst" => Some(Role::Analyst),
            _ => None,
        }
    }

    /// Whether this role reads personal data.
    pub fn reads_personal_data(self) -> bool {
        self == Role::Full
    }
}

/// Whether the request resolving a field may read personal data: its
/// reader's role says so (a request without a reader may not).
pub fn reads_personal_data<T>(ctx: &async_graphql::ContextBase<'_, T>) -> bool {
    ctx.data_opt::<crate::store::read::Reader>()
        .is_some_and(|r| r.role().reads_personal_data())
}

/// The error refusing personal data to a key whose role may not read it;
/// `what` names it ("`name`", "filtering on `summary`").
pub fn forbidden(what: &str) -> async_graphql::Error {
    crate::error::ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "forbidden",
        format!("{what}: personal data, which this API key's role (analyst) may not read"),
    )
    .graphql()
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn names_round_trip() {
        for role in [Role::Full, Role::Analyst] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::default(), Role::Full);
    }
}
