//! sea-orm entities for leadql: one module per table, nothing else.
//!
//! Times are stored as epoch milliseconds (`i64`), the unit the platform
//! sends, so ordering and bucketing are plain integer arithmetic on both
//! SQLite and PostgreSQL. Free-form payload parts are JSON columns.

pub mod activity;
pub mod activity_event;
pub mod activity_rollup;
pub mod analysis;
pub mod api_key;
pub mod callback;
pub mod conversation;
pub mod delivery;
pub mod disposition_event;
pub mod lead;
pub mod lead_rollup;
pub mod lead_update;
pub mod message;
pub mod rejected_delivery;
pub mod tool_call;
pub mod variable;
pub mod variable_rollup;

pub mod prelude {
    pub use super::activity::Entity as Activity;
    pub use super::activity_event::Entity as ActivityEvent;
    pub use super::activity_rollup::Entity as ActivityRollup;
    pub use super::analysis::Entity as Analysis;
    pub use super::api_key::Entity as ApiKey;
    pub use super::callback::Entity as Callback;
    pub use super::conversation::Entity as Conversation;
    pub use super::delivery::Entity as Delivery;
    pub use super::disposition_event::Entity as DispositionEvent;
    pub use super::lead::Entity as Lead;
    pub use super::lead_rollup::Entity as LeadRollup;
    pub use super::lead_update::Entity as LeadUpdate;
    pub use super::message::Entity as Message;
    pub use super::rejected_delivery::Entity as RejectedDelivery;
    pub use super::tool_call::Entity as ToolCall;
    pub use super::variable::Entity as Variable;
    pub use super::variable_rollup::Entity as VariableRollup;
}
