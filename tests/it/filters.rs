//! Every filter operator, on every list and nested list, against the same
//! selection computed independently in Rust from the stored rows; and the
//! aggregates against counts computed the same way.

use crate::common::{TestDb, TestServer};
use entity::{activity, analysis, conversation, lead, message, tool_call, variable};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Everything stored, read straight from the tables.
struct Rows {
    leads: Vec<lead::Model>,
    activities: Vec<activity::Model>,
    conversations: Vec<conversation::Model>,
    analyses: Vec<analysis::Model>,
    tool_calls: Vec<tool_call::Model>,
    messages: Vec<message::Model>,
    variables: Vec<variable::Model>,
}

impl Rows {
    async fn load(s: &TestServer) -> Rows {
        let db = s.db();
        Rows {
            leads: lead::Entity::find().all(db).await.unwrap(),
            activities: activity::Entity::find().all(db).await.unwrap(),
            conversations: conversation::Entity::find().all(db).await.unwrap(),
            analyses: analysis::Entity::find().all(db).await.unwrap(),
            tool_calls: tool_call::Entity::find().all(db).await.unwrap(),
            messages: message::Entity::find().all(db).await.unwrap(),
            variables: variable::Entity::find().all(db).await.unwrap(),
        }
    }

    /// Activity ids with a message containing `text`.
    fn message_activities(&self, text: &str) -> BTreeSet<String> {
        self.messages
            .iter()
            .filter(|m| has(&Some(m.content.clone()), text))
            .map(|m| m.activity_id.clone())
            .collect()
    }

    fn variable(&self, activity: &str, name: &str) -> Option<Option<String>> {
        self.variables
            .iter()
            .find(|v| v.activity_id == activity && v.name == name)
            .map(|v| v.value_text.clone())
    }
}

/// Case-insensitive "contains" (the data is ASCII or caseless Hindi).
fn has(field: &Option<String>, text: &str) -> bool {
    field
        .as_deref()
        .is_some_and(|f| f.to_ascii_lowercase().contains(&text.to_ascii_lowercase()))
}

fn eq_ci(field: &Option<String>, v: &str) -> bool {
    field.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(v))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// A server holding the fixtures and `leads` generated leads.
pub async fn demo_server(db: &TestDb, leads: usize) -> TestServer {
    let s = TestServer::start(db).await;
    leadql::demo::load(&s.state, leads)
        .await
        .expect("load demo data");
    s
}

/// Every id a root list returns for `filter`, paging through all of it;
/// also checks that `totalCount` agrees.
async fn root_ids(
    s: &TestServer,
    list: &str,
    filter_type: &str,
    id: &str,
    filter: &Value,
) -> BTreeSet<String> {
    let query = format!(
        "query($f: {filter_type}, $after: String) {{ {list}(filter: $f, first: 97, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {id} }} }} }}"
    );
    let mut ids = BTreeSet::new();
    let mut after = Value::Null;
    let mut total;
    loop {
        let data = s
            .query(&query, json!({ "f": filter, "after": after }))
            .await;
        let conn = &data[list];
        total = conn["totalCount"].as_i64();
        for node in conn["nodes"].as_array().unwrap() {
            assert!(
                ids.insert(node[id].as_str().unwrap().to_string()),
                "{list} repeated a node"
            );
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        total,
        Some(ids.len() as i64),
        "{list} totalCount for {filter}"
    );
    ids
}

fn set<'a>(ids: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    ids.cloned().collect()
}

#[tokio::test]
async fn every_filter_operator_on_every_list() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 60).await;
    let r = Rows::load(&s).await;

    // Values taken from the data, so every case selects some rows and not all.
    let mut projects: HashMap<&str, usize> = HashMap::new();
    for l in &r.leads {
        if let Some(p) = &l.project_id {
            *projects.entry(p).or_default() += 1;
        }
    }
    let project = projects
        .iter()
        .max_by_key(|(_, n)| **n)
        .unwrap()
        .0
        .to_string();
    let mut times: Vec<i64> = r.activities.iter().map(|a| a.timestamp).collect();
    times.sort();
    let mid = times[times.len() / 2];
    let some_lead = r
        .activities
        .iter()
        .find(|a| a.call_status.as_deref() == Some("busy"))
        .unwrap()
        .lead_id
        .clone();
    let two_leads: Vec<String> = r.leads.iter().take(2).map(|l| l.id.clone()).collect();

    type LeadCase = (Value, Box<dyn Fn(&lead::Model) -> bool>);
    let lead_cases: Vec<LeadCase> = vec![
        (json!({}), Box::new(|_| true)),
        (
            json!({"projectId": {"eq": project}}),
            Box::new({
                let p = project.clone();
                move |l| l.project_id.as_deref() == Some(&p)
            }),
        ),
        (
            json!({"projectId": {"ne": project}}),
            Box::new({
                let p = project.clone();
                move |l| l.project_id.as_ref().is_some_and(|x| *x != p)
            }),
        ),
        (
            json!({"id": {"in": two_leads}}),
            Box::new({
                let ids = two_leads.clone();
                move |l| ids.contains(&l.id)
            }),
        ),
        (
            json!({"disposition": {"eq": "interested"}}),
            Box::new(|l| eq_ci(&l.disposition, "interested")),
        ),
        (
            json!({"disposition": {"in": ["Interested", "NOT INTERESTED"]}}),
            Box::new(|l| {
                eq_ci(&l.disposition, "interested") || eq_ci(&l.disposition, "not interested")
            }),
        ),
        (
            json!({"disposition": {"notIn": ["Attempted"]}}),
            Box::new(|l| l.disposition.is_some() && !eq_ci(&l.disposition, "attempted")),
        ),
        (
            json!({"dispositionType": {"ne": "NEUTRAL"}}),
            Box::new(|l| l.disposition_type.is_some() && !eq_ci(&l.disposition_type, "neutral")),
        ),
        (
            json!({"name": {"contains": "SHARMA"}}),
            Box::new(|l| has(&l.name, "sharma")),
        ),
        (
            json!({"name": {"startsWith": "pri"}}),
            Box::new(|l| {
                l.name
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().starts_with("pri"))
            }),
        ),
        (
            json!({"name": {"isNull": true}}),
            Box::new(|l| l.name.is_none()),
        ),
        (
            json!({"state": {"isNull": false}}),
            Box::new(|l| l.state.is_some()),
        ),
        (
            json!({"summary": {"contains": "busy"}}),
            Box::new(|l| has(&l.summary, "busy")),
        ),
        (
            json!({"lastActivityAt": {"gte": rfc3339(mid)}}),
            Box::new(move |l| l.last_activity_at.is_some_and(|t| t >= mid)),
        ),
        (
            json!({"lastActivityAt": {"lt": rfc3339(mid), "gt": rfc3339(times[0])}}),
            Box::new({
                let first = times[0];
                move |l| l.last_activity_at.is_some_and(|t| t < mid && t > first)
            }),
        ),
        (
            json!({"lastActivityAt": {"isNull": true}}),
            Box::new(|l| l.last_activity_at.is_none()),
        ),
        (
            json!({"firstActivityAt": {"lte": rfc3339(mid)}}),
            Box::new(move |l| l.first_activity_at.is_some_and(|t| t <= mid)),
        ),
        (
            json!({"activityCount": {"gte": 3}}),
            Box::new(|l| l.activity_count >= 3),
        ),
        (
            json!({"activityCount": {"in": [1, 2], "ne": 1}}),
            Box::new(|l| l.activity_count == 2),
        ),
        (
            json!({"activityCount": {"gt": 1, "lt": 4, "lte": 3}}),
            Box::new(|l| l.activity_count > 1 && l.activity_count < 4),
        ),
        (
            json!({"activityCount": {"eq": 1}}),
            Box::new(|l| l.activity_count == 1),
        ),
        (
            json!({"or": [{"disposition": {"eq": "Interested"}}, {"activityCount": {"gte": 4}}]}),
            Box::new(|l| eq_ci(&l.disposition, "interested") || l.activity_count >= 4),
        ),
        (
            json!({"not": {"projectId": {"eq": project}}}),
            Box::new({
                let p = project.clone();
                // NOT (project = P) keeps leads with another project; SQL leaves
                // out those whose project is null (unknown).
                move |l| l.project_id.as_ref().is_some_and(|x| *x != p)
            }),
        ),
        (
            json!({"and": [{"name": {"contains": "a"}}, {"not": {"state": {"isNull": true}}}], "disposition": {"isNull": false}}),
            Box::new(|l| has(&l.name, "a") && l.state.is_some() && l.disposition.is_some()),
        ),
        (
            json!({"search": "INSURANCE"}),
            Box::new({
                let analyses: BTreeSet<String> = r
                    .analyses
                    .iter()
                    .filter(|a| has(&a.summary, "insurance"))
                    .map(|a| a.lead_id.clone())
                    .collect();
                let messages: BTreeSet<String> = r
                    .messages
                    .iter()
                    .filter(|m| has(&Some(m.content.clone()), "insurance"))
                    .map(|m| m.lead_id.clone())
                    .collect();
                move |l| {
                    has(&l.summary, "insurance")
                        || analyses.contains(&l.id)
                        || messages.contains(&l.id)
                }
            }),
        ),
        (
            json!({"search": "no-answer"}),
            Box::new({
                let analyses: BTreeSet<String> = r
                    .analyses
                    .iter()
                    .filter(|a| has(&a.summary, "no-answer"))
                    .map(|a| a.lead_id.clone())
                    .collect();
                let messages: BTreeSet<String> = r
                    .messages
                    .iter()
                    .filter(|m| has(&Some(m.content.clone()), "no-answer"))
                    .map(|m| m.lead_id.clone())
                    .collect();
                move |l| {
                    has(&l.summary, "no-answer")
                        || analyses.contains(&l.id)
                        || messages.contains(&l.id)
                }
            }),
        ),
    ];
    for (filter, keep) in &lead_cases {
        let expected = set(r.leads.iter().filter(|l| keep(l)).map(|l| &l.id));
        let got = root_ids(&s, "leads", "LeadFilter", "id", filter).await;
        assert_eq!(got, expected, "leads(filter: {filter})");
    }
    // The cases select something and not everything, or they prove little.
    let sizes: Vec<usize> = lead_cases
        .iter()
        .map(|(_, keep)| r.leads.iter().filter(|l| keep(l)).count())
        .collect();
    let trivial = sizes
        .iter()
        .skip(1)
        .filter(|n| **n == 0 || **n == r.leads.len())
        .count();
    assert!(
        trivial <= 3,
        "too many cases select nothing or everything: {sizes:?}"
    );

    type ActivityCase<'a> = (Value, Box<dyn Fn(&activity::Model) -> bool + 'a>);
    let urgent = r.variables.iter().filter(|v| v.name == "Urgency").count();
    assert!(urgent > 0, "the data has Urgency variables");
    let activity_cases: Vec<ActivityCase> = vec![
        (
            json!({"callStatus": {"eq": "busy"}}),
            Box::new(|a| a.call_status.as_deref() == Some("busy")),
        ),
        (
            json!({"callStatus": {"in": ["busy", "no-answer"]}}),
            Box::new(|a| matches!(a.call_status.as_deref(), Some("busy" | "no-answer"))),
        ),
        (
            json!({"type": {"eq": "call"}, "status": {"isNull": false}}),
            Box::new(|a| a.r#type.as_deref() == Some("call") && a.status.is_some()),
        ),
        (
            json!({"actionType": {"eq": "create"}}),
            Box::new(|a| a.action_type.as_deref() == Some("create")),
        ),
        (
            json!({"isConnected": {"eq": true}}),
            Box::new(|a| a.is_connected == Some(true)),
        ),
        (
            json!({"isConnected": {"isNull": true}}),
            Box::new(|a| a.is_connected.is_none()),
        ),
        (
            json!({"hasConversation": {"eq": true}}),
            Box::new(|a| a.has_conversation),
        ),
        (
            json!({"hasTransfer": {"eq": false}}),
            Box::new(|a| a.has_transfer == Some(false)),
        ),
        (
            json!({"attemptNumber": {"gte": 2}}),
            Box::new(|a| a.attempt_number.is_some_and(|n| n >= 2)),
        ),
        (
            json!({"channelId": {"eq": 5}}),
            Box::new(|a| a.channel_id == Some(5)),
        ),
        (
            json!({"timestamp": {"gt": rfc3339(mid)}}),
            Box::new(move |a| a.timestamp > mid),
        ),
        (
            json!({"timestamp": {"eq": rfc3339(mid)}}),
            Box::new(move |a| a.timestamp == mid),
        ),
        (
            json!({"scheduledAt": {"isNull": false}}),
            Box::new(|a| a.scheduled_at.is_some()),
        ),
        (
            json!({"toState": {"startsWith": "schedule"}}),
            Box::new(|a| {
                a.to_state
                    .as_deref()
                    .is_some_and(|t| t.starts_with("schedule"))
            }),
        ),
        (
            json!({"fromState": {"contains": "CALL"}}),
            Box::new(|a| has(&a.from_state, "call")),
        ),
        (
            json!({"disposition": {"eq": "interested"}}),
            Box::new(|a| eq_ci(&a.analysis_disposition, "interested")),
        ),
        (
            json!({"dispositionType": {"eq": "NEUTRAL"}}),
            Box::new(|a| eq_ci(&a.analysis_disposition_type, "neutral")),
        ),
        (
            json!({"leadDisposition": {"isNull": false}}),
            Box::new(|a| a.lead_disposition.is_some()),
        ),
        (
            json!({"leadId": {"eq": some_lead}}),
            Box::new({
                let l = some_lead.clone();
                move |a| a.lead_id == l
            }),
        ),
        (
            json!({"projectId": {"eq": project}, "telephonyType": {"isNull": false}}),
            Box::new({
                let p = project.clone();
                move |a| a.project_id.as_deref() == Some(&p) && a.telephony_type.is_some()
            }),
        ),
        (
            json!({"flowId": {"isNull": true}}),
            Box::new(|a| a.flow_id.is_none()),
        ),
        (
            json!({"language": {"eq": "hi"}}),
            Box::new(|a| a.language.as_deref() == Some("hi")),
        ),
        (
            json!({"language": {"isNull": true}}),
            Box::new(|a| a.language.is_none()),
        ),
        (
            json!({"variable": {"name": "Urgency", "eq": "Very Urgent"}}),
            Box::new(|a| r.variable(&a.id, "Urgency") == Some(Some("Very Urgent".to_string()))),
        ),
        (
            json!({"variable": {"name": "Urgency", "in": ["None", "Very Urgent"]}}),
            Box::new(
                |a| matches!(r.variable(&a.id, "Urgency"), Some(Some(v)) if v == "None" || v == "Very Urgent"),
            ),
        ),
        (
            json!({"variable": {"name": "Urgency", "contains": "URGENT"}}),
            Box::new(|a| matches!(r.variable(&a.id, "Urgency"), Some(v) if has(&v, "urgent"))),
        ),
        (
            json!({"variable": {"name": "Urgency"}}),
            Box::new(|a| r.variable(&a.id, "Urgency").is_some()),
        ),
        (
            json!({"search": "insurance"}),
            Box::new({
                let m = r.message_activities("insurance");
                move |a| {
                    has(&a.lead_summary, "insurance")
                        || has(&a.analysis_summary, "insurance")
                        || m.contains(&a.id)
                }
            }),
        ),
        (
            json!({"or": [{"callStatus": {"eq": "busy"}}, {"hasConversation": {"eq": true}}], "not": {"attemptNumber": {"eq": 1}}}),
            Box::new(|a| {
                (a.call_status.as_deref() == Some("busy") || a.has_conversation)
                    && a.attempt_number.is_some_and(|n| n != 1)
            }),
        ),
    ];
    for (filter, keep) in &activity_cases {
        let expected = set(r.activities.iter().filter(|a| keep(a)).map(|a| &a.id));
        let got = root_ids(&s, "activities", "ActivityFilter", "id", filter).await;
        assert_eq!(got, expected, "activities(filter: {filter})");
    }

    type ConversationCase = (Value, Box<dyn Fn(&conversation::Model) -> bool>);
    let conversation_cases: Vec<ConversationCase> = vec![
        (
            json!({"turnCount": {"gte": 10}}),
            Box::new(|c| c.turn_count.is_some_and(|n| n >= 10)),
        ),
        (
            json!({"turnCount": {"lt": 10}, "reconciled": {"isNull": false}}),
            Box::new(|c| c.turn_count.is_some_and(|n| n < 10) && c.reconciled.is_some()),
        ),
        (
            json!({"leadId": {"in": two_leads}}),
            Box::new({
                let ids = two_leads.clone();
                move |c| ids.contains(&c.lead_id)
            }),
        ),
        (
            json!({"timestamp": {"gte": rfc3339(mid)}}),
            Box::new(move |c| c.timestamp >= mid),
        ),
        (
            json!({"createdAt": {"isNull": false}, "streamId": {"isNull": false}}),
            Box::new(|c| c.created_at.is_some() && c.stream_id.is_some()),
        ),
        (
            json!({"search": "insurance"}),
            Box::new({
                let m = r.message_activities("insurance");
                move |c| m.contains(&c.activity_id)
            }),
        ),
        (
            json!({"search": "बोलिए"}),
            Box::new({
                let m = r.message_activities("बोलिए");
                move |c| m.contains(&c.activity_id)
            }),
        ),
    ];
    for (filter, keep) in &conversation_cases {
        let expected = set(r
            .conversations
            .iter()
            .filter(|c| keep(c))
            .map(|c| &c.activity_id));
        let got = root_ids(
            &s,
            "conversations",
            "ConversationFilter",
            "activityId",
            filter,
        )
        .await;
        assert_eq!(got, expected, "conversations(filter: {filter})");
    }

    type AnalysisCase = (Value, Box<dyn Fn(&analysis::Model) -> bool>);
    let analysis_cases: Vec<AnalysisCase> = vec![
        (
            json!({"disposition": {"eq": "ATTEMPTED"}}),
            Box::new(|a| eq_ci(&a.disposition, "attempted")),
        ),
        (
            json!({"success": {"eq": true}}),
            Box::new(|a| a.success == Some(true)),
        ),
        (
            json!({"summary": {"contains": "busy"}}),
            Box::new(|a| has(&a.summary, "busy")),
        ),
        (
            json!({"search": "BUSY"}),
            Box::new(|a| has(&a.summary, "busy")),
        ),
        (
            json!({"timestamp": {"isNull": false}, "activityTimestamp": {"lt": rfc3339(mid)}}),
            Box::new(move |a| a.timestamp.is_some() && a.activity_timestamp < mid),
        ),
    ];
    for (filter, keep) in &analysis_cases {
        let expected = set(r
            .analyses
            .iter()
            .filter(|a| keep(a))
            .map(|a| &a.activity_id));
        let got = root_ids(&s, "analyses", "AnalysisFilter", "activityId", filter).await;
        assert_eq!(got, expected, "analyses(filter: {filter})");
    }

    type ToolCallCase = (Value, Box<dyn Fn(&tool_call::Model) -> bool>);
    let tool_cases: Vec<ToolCallCase> = vec![
        (
            json!({"name": {"eq": "scheduleExpertCallback"}}),
            Box::new(|t| t.name == "scheduleExpertCallback"),
        ),
        (
            json!({"name": {"startsWith": "END"}}),
            Box::new(|t| t.name.to_ascii_lowercase().starts_with("end")),
        ),
        (
            json!({"success": {"isNull": true}}),
            Box::new(|t| t.success.is_none()),
        ),
        (
            json!({"timestamp": {"isNull": false}, "not": {"name": {"eq": "endCall"}}}),
            Box::new(|t| t.timestamp.is_some() && t.name != "endCall"),
        ),
    ];
    for (filter, keep) in &tool_cases {
        let expected = set(r
            .tool_calls
            .iter()
            .filter(|t| keep(t))
            .map(|t| format!("{}:{}", t.activity_id, t.position))
            .collect::<Vec<_>>()
            .iter());
        let got = root_ids(&s, "toolCalls", "ToolCallFilter", "id", filter).await;
        assert_eq!(got, expected, "toolCalls(filter: {filter})");
    }

    // Nested lists take the same filters: every lead's activities, analyses,
    // conversations and tool calls in one query, against the same
    // predicates restricted to the lead.
    let nested = "query($a: ActivityFilter, $n: AnalysisFilter, $c: ConversationFilter, $t: ToolCallFilter) {
        leads(first: 100) { nodes { id
          activities(filter: $a, first: 20) { totalCount nodes { id } }
          analyses(filter: $n, first: 20) { totalCount nodes { activityId } }
          conversations(filter: $c, first: 20) { totalCount nodes { activityId toolCalls(filter: $t, first: 10) { nodes { id } } } }
          toolCalls(filter: $t, first: 20) { totalCount nodes { id } } } } }";
    for i in 0..activity_cases
        .len()
        .min(analysis_cases.len())
        .max(conversation_cases.len())
    {
        let (af, ak) = &activity_cases[i % activity_cases.len()];
        let (nf, nk) = &analysis_cases[i % analysis_cases.len()];
        let (cf, ck) = &conversation_cases[i % conversation_cases.len()];
        let (tf, tk) = &tool_cases[i % tool_cases.len()];
        let data = s
            .query(nested, json!({"a": af, "n": nf, "c": cf, "t": tf}))
            .await;
        for node in data["leads"]["nodes"].as_array().unwrap() {
            let lead = node["id"].as_str().unwrap();
            let got = |conn: &Value, id: &str| -> BTreeSet<String> {
                let ids: BTreeSet<String> = conn["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n[id].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(
                    conn["totalCount"].as_i64().unwrap(),
                    ids.len() as i64,
                    "nested totalCount"
                );
                ids
            };
            let expected_a = set(r
                .activities
                .iter()
                .filter(|a| a.lead_id == lead && ak(a))
                .map(|a| &a.id));
            assert_eq!(
                got(&node["activities"], "id"),
                expected_a,
                "lead {lead} activities(filter: {af})"
            );
            let expected_n = set(r
                .analyses
                .iter()
                .filter(|a| a.lead_id == lead && nk(a))
                .map(|a| &a.activity_id));
            assert_eq!(
                got(&node["analyses"], "activityId"),
                expected_n,
                "lead {lead} analyses(filter: {nf})"
            );
            let expected_c = set(r
                .conversations
                .iter()
                .filter(|c| c.lead_id == lead && ck(c))
                .map(|c| &c.activity_id));
            assert_eq!(
                got(&node["conversations"], "activityId"),
                expected_c,
                "lead {lead} conversations(filter: {cf})"
            );
            let tool_ids = |pred: &dyn Fn(&tool_call::Model) -> bool| -> BTreeSet<String> {
                r.tool_calls
                    .iter()
                    .filter(|t| pred(t))
                    .map(|t| format!("{}:{}", t.activity_id, t.position))
                    .collect()
            };
            assert_eq!(
                got(&node["toolCalls"], "id"),
                tool_ids(&|t| t.lead_id == lead && tk(t)),
                "lead {lead} toolCalls(filter: {tf})"
            );
            for conv in node["conversations"]["nodes"].as_array().unwrap() {
                let activity = conv["activityId"].as_str().unwrap();
                let ids: BTreeSet<String> = conv["toolCalls"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(
                    ids,
                    tool_ids(&|t| t.activity_id == activity && tk(t)),
                    "conversation {activity} toolCalls(filter: {tf})"
                );
            }
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn aggregates_agree_with_counts_from_the_rows() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 60).await;
    let r = Rows::load(&s).await;

    // dispositionCounts, whole range and per DAY / WEEK / HOUR.
    const DAY: i64 = 86_400_000;
    for (bucket, size, offset) in [
        ("null", 0, 0),
        ("DAY", DAY, 0),
        ("WEEK", 7 * DAY, 4 * DAY),
        ("HOUR", 3_600_000, 0),
    ] {
        type Group = (Option<String>, Option<String>, Option<String>);
        let mut expected: BTreeMap<Group, i64> = BTreeMap::new();
        for a in r
            .activities
            .iter()
            .filter(|a| a.analysis_disposition.is_some())
        {
            let start = (size > 0)
                .then(|| rfc3339((a.timestamp - offset).div_euclid(size) * size + offset));
            *expected
                .entry((
                    a.analysis_disposition.clone(),
                    a.analysis_disposition_type.clone(),
                    start,
                ))
                .or_default() += 1;
        }
        let query = format!("{{ dispositionCounts(bucket: {bucket}) {{ disposition dispositionType bucketStart count }} }}");
        let data = s.query(&query, json!({})).await;
        let mut got = BTreeMap::new();
        for row in data["dispositionCounts"].as_array().unwrap() {
            let text = |v: &Value| v.as_str().map(str::to_string);
            let start = text(&row["bucketStart"]).map(|t| {
                chrono::DateTime::parse_from_rfc3339(&t)
                    .unwrap()
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339()
            });
            let prior = got.insert(
                (
                    text(&row["disposition"]),
                    text(&row["dispositionType"]),
                    start,
                ),
                row["count"].as_i64().unwrap(),
            );
            assert!(prior.is_none(), "a group appears once");
        }
        assert_eq!(got, expected, "dispositionCounts(bucket: {bucket})");
        // In order: by bucket, then the biggest count first, then by name.
        let key = |row: &Value| {
            (
                row["bucketStart"].as_str().map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .unwrap()
                        .timestamp_millis()
                }),
                -row["count"].as_i64().unwrap(),
                row["disposition"].as_str().map(str::to_string),
                row["dispositionType"].as_str().map(str::to_string),
            )
        };
        let rows = data["dispositionCounts"].as_array().unwrap();
        assert!(
            rows.windows(2).all(|w| key(&w[0]) <= key(&w[1])),
            "dispositionCounts(bucket: {bucket}) in order: {rows:?}"
        );
    }
    // Week buckets start on Mondays.
    let data = s
        .query(
            "{ dispositionCounts(bucket: WEEK) { bucketStart } }",
            json!({}),
        )
        .await;
    for row in data["dispositionCounts"].as_array().unwrap() {
        let t = chrono::DateTime::parse_from_rfc3339(row["bucketStart"].as_str().unwrap()).unwrap();
        assert_eq!(t.format("%a %H:%M:%S").to_string(), "Mon 00:00:00");
    }

    // With a filter: the same filter as the list.
    let data = s
        .query(
            r#"{ dispositionCounts(filter: {callStatus: {eq: "busy"}}) { disposition count } }"#,
            json!({}),
        )
        .await;
    let busy_with_disposition = r
        .activities
        .iter()
        .filter(|a| a.call_status.as_deref() == Some("busy") && a.analysis_disposition.is_some())
        .count() as i64;
    let sum: i64 = data["dispositionCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, busy_with_disposition);
    assert!(sum > 0);

    // leadFunnel: leads per current disposition, null included.
    let mut expected: BTreeMap<(Option<String>, Option<String>), i64> = BTreeMap::new();
    for l in &r.leads {
        *expected
            .entry((l.disposition.clone(), l.disposition_type.clone()))
            .or_default() += 1;
    }
    let data = s
        .query(
            "{ leadFunnel { disposition dispositionType count } }",
            json!({}),
        )
        .await;
    let got: BTreeMap<(Option<String>, Option<String>), i64> = data["leadFunnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let text = |v: &Value| v.as_str().map(str::to_string);
            (
                (text(&row["disposition"]), text(&row["dispositionType"])),
                row["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let counts: Vec<i64> = data["leadFunnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most frequent first: {counts:?}"
    );

    // callStats over everything and over one project.
    let project = r.leads.iter().find_map(|l| l.project_id.clone()).unwrap();
    for (filter, keep) in [
        (
            json!(null),
            Box::new(|_: &activity::Model| true) as Box<dyn Fn(&activity::Model) -> bool>,
        ),
        (
            json!({"projectId": {"eq": project}}),
            Box::new(move |a: &activity::Model| a.project_id.as_deref() == Some(project.as_str())),
        ),
    ] {
        let acts: Vec<&activity::Model> = r.activities.iter().filter(|a| keep(a)).collect();
        let calls: Vec<&&activity::Model> = acts
            .iter()
            .filter(|a| a.r#type.as_deref() == Some("call"))
            .collect();
        let connected = calls
            .iter()
            .filter(|a| match a.is_connected {
                Some(c) => c,
                None => a.has_conversation || a.call_status.as_deref() == Some("completed"),
            })
            .count() as i64;
        let ids: BTreeSet<&str> = acts.iter().map(|a| a.id.as_str()).collect();
        let turns: Vec<i32> = r
            .conversations
            .iter()
            .filter(|c| ids.contains(c.activity_id.as_str()))
            .filter_map(|c| c.turn_count)
            .collect();
        let tools = r
            .tool_calls
            .iter()
            .filter(|t| ids.contains(t.activity_id.as_str()))
            .count() as i64;
        let data = s
            .query(
                "query($f: ActivityFilter) { callStats(filter: $f) { attempts connected connectRate averageTurnCount toolCalls } }",
                json!({ "f": filter }),
            )
            .await;
        let stats = &data["callStats"];
        assert_eq!(
            stats["attempts"].as_i64().unwrap(),
            calls.len() as i64,
            "{filter}"
        );
        assert_eq!(stats["connected"].as_i64().unwrap(), connected, "{filter}");
        assert!(connected > 0 && connected < calls.len() as i64);
        let rate = stats["connectRate"].as_f64().unwrap();
        assert!((rate - connected as f64 / calls.len() as f64).abs() < 1e-9);
        let mean = turns.iter().map(|n| *n as f64).sum::<f64>() / turns.len() as f64;
        assert!((stats["averageTurnCount"].as_f64().unwrap() - mean).abs() < 1e-9);
        assert_eq!(stats["toolCalls"].as_i64().unwrap(), tools);
    }
    // No attempts: a rate of 0, no mean.
    let data = s
        .query(r#"{ callStats(filter: {leadId: {eq: "nobody"}}) { attempts connectRate averageTurnCount toolCalls } }"#, json!({}))
        .await;
    assert_eq!(
        data["callStats"],
        json!({"attempts": 0, "connectRate": 0.0, "averageTurnCount": null, "toolCalls": 0})
    );
    s.stop().await;
}

/// Subscriptions check live events in memory; that must agree with the
/// database on stored ones, NULLs included (SQL's three-valued logic).
#[tokio::test]
async fn live_event_matching_agrees_with_the_database() {
    use async_graphql::InputType;
    use leadql::graphql::engine::filter::condition;
    use leadql::graphql::resources::disposition_event::DispositionEventFilter;
    use sea_orm::QueryFilter;
    let db = TestDb::new().await;
    let s = demo_server(&db, 60).await;
    // Dispositions in other scripts and cases: accented Latin, Turkish
    // dotted and dotless i, German sharp s, Greek sigma, Devanagari.
    let unicode = [
        "INTÉRESSÉ",
        "intéressé",
        "İlgileniyor",
        "ILGILENIYOR",
        "ılgılenıyor",
        "STRASSE",
        "Straße",
        "ẞIG",
        "ΣΑΣ",
        "σας",
        "रुचि है",
    ];
    for (i, disposition) in unicode.iter().enumerate() {
        let body = crate::common::SEED_CONNECTED
            .replace("6966163xxxxxxxxxxff92", &format!("unicode-lead-{i}"))
            .replace("6966179xxxxxxxxxxaf8ef", &format!("unicode-call-{i}"))
            .replace("681db2dxxxxxxxxxxxx120", "PROJÉCT-Ü")
            .replace(
                "\"Interested\"",
                &serde_json::to_string(disposition).unwrap(),
            );
        assert_eq!(s.deliver(body).await.0, 200);
    }
    let events = entity::disposition_event::Entity::find()
        .all(s.db())
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.project_id.is_none())
            && events.iter().any(|e| e.previous_disposition.is_none())
            && events.iter().any(|e| e.disposition == "Straße")
    );
    let project = events.iter().find_map(|e| e.project_id.clone()).unwrap();
    let t = rfc3339(events[events.len() / 2].occurred_at);
    let cases = [
        json!({}),
        json!({"projectId": {"eq": project}}),
        json!({"projectId": {"ne": project}}),
        json!({"not": {"projectId": {"eq": project}}}),
        json!({"projectId": {"isNull": true}}),
        json!({"disposition": {"eq": "INTERESTED"}}),
        json!({"disposition": {"in": ["interested", "Callback Requested"]}, "previousDisposition": {"isNull": false}}),
        json!({"disposition": {"notIn": ["Attempted"]}}),
        json!({"disposition": {"in": []}}),
        json!({"previousDisposition": {"notIn": []}}),
        json!({"previousDisposition": {"ne": "Attempted"}}),
        json!({"not": {"previousDisposition": {"eq": "Attempted"}}}),
        json!({"dispositionType": {"contains": "TIV"}}),
        json!({"disposition": {"startsWith": "call"}}),
        json!({"leadId": {"in": [events[0].lead_id.clone(), events[1].lead_id.clone()]}}),
        json!({"occurredAt": {"gte": t}}),
        json!({"or": [{"projectId": {"eq": project}}, {"disposition": {"eq": "Wrong Number"}}]}),
        json!({"not": {"or": [{"projectId": {"eq": project}}, {"previousDisposition": {"eq": "Attempted"}}]}}),
        json!({"and": [{"not": {"disposition": {"eq": "Attempted"}}}, {"occurredAt": {"lt": t}}]}),
        json!({"disposition": {"eq": "intéressé"}}),
        json!({"disposition": {"in": ["İLGİLENİYOR"]}}),
        json!({"disposition": {"eq": "ILGILENIYOR"}}),
        json!({"disposition": {"contains": "ÉRES"}}),
        json!({"disposition": {"startsWith": "ß"}}),
        json!({"disposition": {"eq": "strasse"}}),
        json!({"disposition": {"contains": "SS"}}),
        json!({"disposition": {"eq": "σασ"}}),
        json!({"disposition": {"contains": "रुचि"}}),
        json!({"disposition": {"notIn": ["STRASSE", "ılgılenıyor", "σας"]}}),
        json!({"projectId": {"contains": "projé"}}),
        json!({"projectId": {"startsWith": "PROJÉCT-ü"}}),
        json!({"projectId": {"eq": "PROJÉCT-ü"}}),
    ];
    for case in cases {
        let filter = DispositionEventFilter::parse(Some(
            async_graphql::Value::from_json(case.clone()).unwrap(),
        ))
        .unwrap();
        let cond = condition(
            &filter,
            s.db().get_database_backend(),
            leadql::access::Role::Full,
        )
        .unwrap();
        let mut from_sql: Vec<i64> = entity::disposition_event::Entity::find()
            .filter(cond)
            .all(s.db())
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        from_sql.sort();
        let mut in_memory: Vec<i64> = events
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.id)
            .collect();
        in_memory.sort();
        assert_eq!(in_memory, from_sql, "filter {case}");
        let expected = match case.to_string().as_str() {
            r#"{"disposition":{"eq":"intéressé"}}"# => Some(2),
            r#"{"disposition":{"in":["İLGİLENİYOR"]}}"# => Some(2),
            r#"{"disposition":{"startsWith":"ß"}}"# => Some(1),
            r#"{"disposition":{"eq":"strasse"}}"# => Some(1),
            r#"{"disposition":{"eq":"σασ"}}"# => Some(1),
            r#"{"projectId":{"contains":"projé"}}"# => Some(unicode.len()),
            r#"{"projectId":{"eq":"PROJÉCT-ü"}}"# => Some(0),
            _ => None,
        };
        if let Some(n) = expected {
            assert_eq!(from_sql.len(), n, "filter {case}");
        }
    }
    s.stop().await;
}
