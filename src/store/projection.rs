//! The lead projection: a lead row is a pure function of its activities, so
//! delivering payloads in any order, any number of times, gives the same
//! lead. Each field comes from the newest activity (by timestamp, then id)
//! that carries a value for it. The lead's callbacks are projected from
//! the same facts (see `store::callbacks`).

use entity::{activity, lead};
use sea_orm::DerivePartialModel;

/// The columns of an activity the lead projection (and the rollups) read
/// (listed here only: they are read with
/// `into_partial_model::<LeadFacts>()`).
#[derive(Clone, Debug, DerivePartialModel)]
#[sea_orm(entity = "activity::Entity")]
pub struct LeadFacts {
    pub id: String,
    pub lead_id: String,
    pub timestamp: i64,
    pub to_state: Option<String>,
    pub lead_disposition: Option<String>,
    pub lead_summary: Option<String>,
    pub analysis_disposition: Option<String>,
    pub analysis_disposition_type: Option<String>,
    pub analysis_summary: Option<String>,
    pub project_id: Option<String>,
    pub process_id: Option<String>,
    pub reference_id: Option<String>,
    pub lead_name: Option<String>,
    pub r#type: Option<String>,
    pub callback_promised: bool,
    pub callback_tool_call_id: Option<String>,
    pub callback_date: Option<String>,
    pub callback_time: Option<String>,
    pub callback_offset: Option<i32>,
    pub is_connected: Option<bool>,
    pub has_conversation: bool,
    pub call_status: Option<String>,
}

impl From<&activity::Model> for LeadFacts {
    fn from(a: &activity::Model) -> Self {
        LeadFacts {
            id: a.id.clone(),
            lead_id: a.lead_id.clone(),
            timestamp: a.timestamp,
            to_state: a.to_state.clone(),
            lead_disposition: a.lead_disposition.clone(),
            lead_summary: a.lead_summary.clone(),
            analysis_disposition: a.analysis_disposition.clone(),
            analysis_disposition_type: a.analysis_disposition_type.clone(),
            analysis_summary: a.analysis_summary.clone(),
            project_id: a.project_id.clone(),
            process_id: a.process_id.clone(),
            reference_id: a.reference_id.clone(),
            lead_name: a.lead_name.clone(),
            r#type: a.r#type.clone(),
            callback_promised: a.callback_promised,
            callback_tool_call_id: a.callback_tool_call_id.clone(),
            callback_date: a.callback_date.clone(),
            callback_time: a.callback_time.clone(),
            callback_offset: a.callback_offset,
            is_connected: a.is_connected,
            has_conversation: a.has_conversation,
            call_status: a.call_status.clone(),
        }
    }
}

impl LeadFacts {
    /// The lead's disposition as of this activity: the platform's
    /// `leadDisposition`, else the call's analysis disposition.
    fn disposition(&self) -> Option<&String> {
        self.lead_disposition
            .as_ref()
            .or(self.analysis_disposition.as_ref())
    }
}

/// Project a lead from all of its activities (in any order).
pub fn project_lead(lead_id: &str, facts: &[LeadFacts]) -> lead::Model {
    let mut newest_first: Vec<&LeadFacts> = facts.iter().collect();
    newest_first.sort_unstable_by(|a, b| (b.timestamp, &b.id).cmp(&(a.timestamp, &a.id)));
    fn first<'a, T: 'a>(
        facts: &[&'a LeadFacts],
        field: impl Fn(&'a LeadFacts) -> Option<T>,
    ) -> Option<T> {
        facts.iter().find_map(|f| field(f))
    }
    let disposition = first(&newest_first, |f| f.disposition().cloned());
    // The type comes from the newest analysis that gave this disposition
    // (a schedule activity repeats the disposition without an analysis).
    let disposition_type = disposition.as_ref().and_then(|d| {
        first(&newest_first, |f| match &f.analysis_disposition {
            Some(a) if a.eq_ignore_ascii_case(d) => Some(f.analysis_disposition_type.clone()),
            _ => None,
        })
        .flatten()
    });
    lead::Model {
        id: lead_id.to_string(),
        reference_id: first(&newest_first, |f| f.reference_id.clone()),
        project_id: first(&newest_first, |f| f.project_id.clone()),
        process_id: first(&newest_first, |f| f.process_id.clone()),
        name: first(&newest_first, |f| f.lead_name.clone()),
        state: first(&newest_first, |f| f.to_state.clone()),
        disposition,
        disposition_type,
        summary: first(&newest_first, |f| {
            f.lead_summary
                .clone()
                .or_else(|| f.analysis_summary.clone())
        }),
        last_activity_id: newest_first.first().map(|f| f.id.clone()),
        last_activity_at: newest_first.first().map(|f| f.timestamp),
        first_activity_at: newest_first.last().map(|f| f.timestamp),
        activity_count: i32::try_from(facts.len()).unwrap_or(i32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &str, ts: i64, disposition: Option<&str>, state: Option<&str>) -> LeadFacts {
        LeadFacts {
            id: id.into(),
            lead_id: "L".into(),
            timestamp: ts,
            to_state: state.map(Into::into),
            lead_disposition: disposition.map(Into::into),
            lead_summary: None,
            analysis_disposition: disposition.map(Into::into),
            analysis_disposition_type: disposition.map(|_| "neutral".into()),
            analysis_summary: None,
            project_id: Some("P".into()),
            process_id: None,
            reference_id: None,
            lead_name: None,
            r#type: Some("call".into()),
            callback_promised: false,
            callback_tool_call_id: None,
            callback_date: None,
            callback_time: None,
            callback_offset: None,
            is_connected: None,
            has_conversation: false,
            call_status: None,
        }
    }

    #[test]
    fn newest_activity_wins_whatever_the_order() {
        let a = fact("a", 10, Some("Attempted"), Some("second_call"));
        let b = fact("b", 20, Some("Interested"), Some("interested"));
        let c = fact("c", 30, None, None); // a schedule: no disposition, no state
        let forward = project_lead("L", &[a.clone(), b.clone(), c.clone()]);
        let backward = project_lead("L", &[c, b, a]);
        assert_eq!(forward, backward);
        assert_eq!(forward.disposition.as_deref(), Some("Interested"));
        assert_eq!(forward.state.as_deref(), Some("interested"));
        assert_eq!(forward.last_activity_id.as_deref(), Some("c"));
        assert_eq!(forward.first_activity_at, Some(10));
        assert_eq!(forward.activity_count, 3);
    }

    #[test]
    fn equal_timestamps_break_ties_by_id() {
        let x = fact("x", 10, Some("One"), None);
        let y = fact("y", 10, Some("Two"), None);
        assert_eq!(
            project_lead("L", &[x.clone(), y.clone()])
                .disposition
                .as_deref(),
            Some("Two")
        );
        assert_eq!(
            project_lead("L", &[y, x]).disposition.as_deref(),
            Some("Two")
        );
    }

    #[test]
    fn disposition_type_only_when_it_belongs_to_the_disposition() {
        let mut f = fact("a", 1, Some("Interested"), None);
        f.lead_disposition = Some("Callback".into());
        let lead = project_lead("L", &[f.clone()]);
        assert_eq!(lead.disposition.as_deref(), Some("Callback"));
        assert_eq!(lead.disposition_type, None);
        // A later schedule repeats the call's disposition without an analysis:
        // the type still comes from the call that decided it.
        let call = fact("b", 2, Some("Attempted"), None);
        let mut schedule = fact("c", 3, None, None);
        schedule.lead_disposition = Some("attempted".into());
        let lead = project_lead("L", &[f, call, schedule]);
        assert_eq!(lead.disposition.as_deref(), Some("attempted"));
        assert_eq!(lead.disposition_type.as_deref(), Some("neutral"));
    }
}
