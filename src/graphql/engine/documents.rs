//! Response fields in the order the query asked for them.
//!
//! async-graphql 7 resolves an object's fields concurrently and writes each
//! into the response as it completes, so a field that waits on the
//! database (e.g. `totalCount`) can land after one asked for later. The
//! spec asks for the query's order (CollectFields), which is what people
//! reading responses in GraphiQL expect; this restores it.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Parsed queries, by text: clients send the same few queries over and
/// over, so each is parsed here once (async-graphql parses it again for
/// execution).
pub struct Documents {
    parsed: Mutex<HashMap<String, Cached>>,
}

/// A parsed query text, and whether it passed the schema's validation.
#[derive(Clone)]
pub struct Cached {
    pub doc: Arc<ExecutableDocument>,
    validated: Arc<AtomicBool>,
}

impl Cached {
    pub fn validated(&self) -> bool {
        self.validated.load(Ordering::Relaxed)
    }

    pub fn set_validated(&self) {
        self.validated.store(true, Ordering::Relaxed);
    }
}

/// Distinct queries kept; past this the cache starts over.
const CACHED_QUERIES: usize = 1024;

impl Default for Documents {
    fn default() -> Self {
        Documents {
            parsed: Mutex::new(HashMap::new()),
        }
    }
}

impl Documents {
    /// The parsed query, or None if it does not parse.
    pub fn get(&self, query: &str) -> Option<Cached> {
        if let Some(cached) = self.parsed.lock().ok()?.get(query) {
            return Some(cached.clone());
        }
        let cached = Cached {
            doc: Arc::new(async_graphql::parser::parse_query(query).ok()?),
            validated: Arc::default(),
        };
        let mut parsed = self.parsed.lock().ok()?;
        if parsed.len() >= CACHED_QUERIES {
            parsed.clear();
        }
        parsed.insert(query.to_string(), cached.clone());
        Some(cached)
    }
}

/// The name of the operation a request runs: the one it names, else the
/// document's only operation's name.
pub fn operation_name(doc: &ExecutableDocument, requested: Option<&str>) -> Option<String> {
    match (&doc.operations, requested) {
        (_, Some(name)) => Some(name.to_string()),
        (DocumentOperations::Single(_), None) => None,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.keys().next().map(|n| n.to_string())
        }
        _ => None,
    }
}

/// Reorder `data` as `doc` (operation `operation`) selects it.
pub fn restore(data: &mut Value, doc: &ExecutableDocument, operation: Option<&str>) {
    let selection = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => &op.node.selection_set,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => &op.node.selection_set,
            None => return,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => &op.node.selection_set,
            None => return,
        },
        _ => return,
    };
    apply(data, &[&selection.node], doc);
}

/// Response keys in query order, each with the selection sets beneath it.
fn collect<'a>(
    sets: &[&'a SelectionSet],
    doc: &'a ExecutableDocument,
    out: &mut Vec<(&'a str, Vec<&'a SelectionSet>)>,
    seen_fragments: &mut HashSet<&'a str>,
) {
    for set in sets {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let key = field.node.response_key().node.as_str();
                    let sub = &field.node.selection_set.node;
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, subs)) => subs.push(sub),
                        None => out.push((key, vec![sub])),
                    }
                }
                Selection::InlineFragment(fragment) => collect(
                    &[&fragment.node.selection_set.node],
                    doc,
                    out,
                    seen_fragments,
                ),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let fragment: Option<&Positioned<FragmentDefinition>> =
                        doc.fragments.get(&Name::new(name));
                    if let Some(fragment) = fragment {
                        if seen_fragments.insert(name) {
                            collect(
                                &[&fragment.node.selection_set.node],
                                doc,
                                out,
                                seen_fragments,
                            );
                            seen_fragments.remove(name);
                        }
                    }
                }
            }
        }
    }
}

fn apply(value: &mut Value, sets: &[&SelectionSet], doc: &ExecutableDocument) {
    match value {
        Value::List(_) | Value::Object(_) => {
            // The keys are worked out once for a whole list, not per item.
            let mut keys = Vec::new();
            collect(sets, doc, &mut keys, &mut HashSet::new());
            apply_keys(value, &keys, doc);
        }
        _ => {}
    }
}

fn apply_keys(value: &mut Value, keys: &[(&str, Vec<&SelectionSet>)], doc: &ExecutableDocument) {
    match value {
        Value::List(items) => {
            for item in items {
                apply_keys(item, keys, doc);
            }
        }
        Value::Object(map) => {
            let position = |key: &str| {
                keys.iter()
                    .position(|(k, _)| *k == key)
                    .unwrap_or(usize::MAX)
            };
            // Most objects are already in order (their fields resolved
            // without waiting): check before sorting.
            let ordered = map
                .keys()
                .map(|k| position(k.as_str()))
                .try_fold(0, |last, p| (p >= last).then_some(p))
                .is_some();
            if !ordered {
                map.sort_by(|a, _, b, _| position(a.as_str()).cmp(&position(b.as_str())));
            }
            for (key, subs) in keys {
                if subs.iter().all(|s| s.items.is_empty()) {
                    continue;
                }
                if let Some(child) = map.get_mut(*key) {
                    apply(child, subs, doc);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_fragments_and_aliases_in_query_order() {
        let mut data = Value::from_json(serde_json::json!({
            "b": [{ "y": 1, "x": 2, "z": 3 }],
            "a": { "q": 1, "p": 2 },
            "first": 0
        }))
        .unwrap();
        let docs = Documents::default();
        let query =
            "query Q { first: c a { p q } b { ...F z } } fragment F on T { x ... on T { y } }";
        let doc = docs.get(query).unwrap().doc;
        assert!(
            Arc::ptr_eq(&doc, &docs.get(query).unwrap().doc),
            "parsed once"
        );
        assert_eq!(operation_name(&doc, None).as_deref(), Some("Q"));
        restore(&mut data, &doc, None);
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"first":0,"a":{"p":2,"q":1},"b":[{"x":2,"y":1,"z":3}]}"#
        );
    }
}
