//! GraphiQL, served by leadql itself: `GET /graphql` from a browser. The
//! scripts and styles are the npm registry's standalone builds, fetched at
//! build time (see `build.rs`) and embedded, so no CDN is needed. A build
//! without npm embeds nothing: the page then loads the same pinned files
//! from a public CDN, each checked by its Subresource Integrity hash, and
//! says so.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/", $name))
    };
}

include!("../../graphiql/assets.rs");

/// The embedded files: name, bytes (none in a build without npm).
#[cfg(not(leadql_graphiql_cdn))]
const EMBEDDED: &[(&str, &[u8])] = &[
    ("react.production.min.js", asset!("react.production.min.js")),
    (
        "react-dom.production.min.js",
        asset!("react-dom.production.min.js"),
    ),
    ("graphiql.min.js", asset!("graphiql.min.js")),
    ("graphiql.min.css", asset!("graphiql.min.css")),
    ("graphql-ws.min.js", asset!("graphql-ws.min.js")),
    ("LICENSE", asset!("GRAPHIQL-LICENSE")),
    ("LICENSE-graphql-ws", asset!("GRAPHQL-WS-LICENSE")),
];
#[cfg(leadql_graphiql_cdn)]
const EMBEDDED: &[(&str, &[u8])] = &[];

/// The CDN a build without npm loads GraphiQL from.
const CDN: &str = "https://cdn.jsdelivr.net/npm/";

/// Where the page's files come from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// Embedded in the binary, served under [`ASSET_PREFIX`].
    Embedded,
    /// The public CDN, checked by Subresource Integrity.
    Cdn,
}

const SOURCE: Source = if EMBEDDED.is_empty() {
    Source::Cdn
} else {
    Source::Embedded
};

/// The URL and attributes that load `name` from `source`.
fn load(source: Source, name: &str) -> String {
    let Some((_, package, path, _, integrity)) = GRAPHIQL_ASSETS.iter().find(|(n, ..)| *n == name)
    else {
        return String::new();
    };
    match source {
        Source::Embedded => format!(r#""{ASSET_PREFIX}{name}""#),
        Source::Cdn => {
            format!(r#""{CDN}{package}/{path}" integrity="{integrity}" crossorigin="anonymous""#)
        }
    }
}

/// Where the assets are served (under /graphql, so one route prefix is
/// enough for proxies and CORS).
pub const ASSET_PREFIX: &str = "/graphql/assets/";

/// The tabs GraphiQL opens with (query, variables): each runs as is
/// against `serve --demo`. `SINCE_TODAY` in variables is replaced in the
/// browser by the start of the current UTC day.
pub const TABS: &[(&str, &str)] = &[
    (
        r#"# Welcome to leadql. Press Ctrl-Enter (or the ▶ button) to run this.
# The Docs pane (top left) describes every type, field and filter; the
# other tabs hold a live feed and today's counts. An API key goes in the
# Headers tab below: {"Authorization": "Bearer lql_…"}.
#
# One lead's whole history: every attempt in time order, its analysis,
# transcript and tool calls (the platform's example lead).
query LeadHistory($id: ID!) {
  lead(id: $id) {
    id
    name
    projectId
    disposition
    summary
    activities {
      nodes {
        timestamp
        type
        callStatus
        analysis { disposition summary }
        conversation {
          turnCount
          messages(first: 20) { nodes { role content } }
          toolCalls { nodes { name arguments } }
        }
      }
    }
  }
}
"#,
        r#"{ "id": "6966163xxxxxxxxxxff92" }"#,
    ),
    (
        r#"# A live feed: each lead whose disposition changes, as its delivery is
# committed. Press ▶ and leave it running; deliver a webhook (README,
# "Ingest") to see the event arrive. With `after: "0"` it first replays
# every stored change; with an event's `cursor`, the ones after it.
subscription LiveDispositions {
  dispositionChanged {
    cursor
    occurredAt
    previousDisposition
    disposition
    lead { id name projectId }
    activity { id type callStatus }
  }
}
"#,
        "",
    ),
    (
        r#"# Call outcomes since the start of today (UTC), and the funnel of
# all leads by their current disposition.
query TodaysCounts($since: DateTime!) {
  dispositionCounts(filter: { timestamp: { gte: $since } }) {
    disposition
    count
  }
  callStats(filter: { timestamp: { gte: $since } }) {
    attempts
    connected
    connectRate
    averageTurnCount
  }
  leadFunnel { disposition count }
}
"#,
        r#"{ "since": "SINCE_TODAY" }"#,
    ),
];

/// The GraphiQL page.
pub fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html(SOURCE),
    )
        .into_response()
}

fn html(source: Source) -> String {
    let tabs: Vec<serde_json::Value> = TABS
        .iter()
        .map(|(query, variables)| serde_json::json!({ "query": query, "variables": variables }))
        .collect();
    let tabs = serde_json::to_string(&tabs).unwrap_or_else(|_| "[]".into());
    let note = match source {
        Source::Embedded => String::new(),
        Source::Cdn => format!(
            r#"<div id="note">This leadql was built without npm: GraphiQL's files come from {CDN} (pinned versions, checked by their integrity hashes). Build with npm to serve them from leadql itself.</div>"#
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leadql · GraphiQL</title>
<link rel="stylesheet" href={css}>
<style>html, body {{ height: 100%; margin: 0; }} body {{ display: flex; flex-direction: column; }}
#graphiql {{ flex: 1; min-height: 0; }} #note {{ font: 12px sans-serif; padding: 4px 8px; background: #fff8e1; }}</style>
</head>
<body>
{note}
<div id="graphiql">Loading GraphiQL…</div>
<script src={react}></script>
<script src={react_dom}></script>
<script src={graphiql}></script>
<script src={graphql_ws}></script>
<script>
  const url = new URL("/graphql", window.location.href);
  const wsUrl = new URL("/graphql/ws", window.location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  // Subscriptions go over graphql-ws; the Headers tab's headers (an API
  // key's Authorization) travel in connection_init. One lazy client per
  // set of headers: it holds a socket only while a subscription runs.
  const clients = new Map();
  const wsClient = (headers) => {{
    const key = JSON.stringify(headers || {{}});
    if (!clients.has(key)) {{
      clients.set(key, graphqlWs.createClient({{ url: wsUrl.toString(), connectionParams: headers || {{}}, retryAttempts: 0 }}));
    }}
    return clients.get(key);
  }};
  const fetchers = new Map();
  const fetcher = (params, options) => {{
    const headers = (options && options.headers) || {{}};
    const key = JSON.stringify(headers);
    if (!fetchers.has(key)) {{
      fetchers.set(key, GraphiQL.createFetcher({{ url: url.toString(), wsClient: wsClient(headers) }}));
    }}
    return fetchers.get(key)(params, options);
  }};
  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  const defaultTabs = {tabs}.map((tab) => ({{
    query: tab.query,
    variables: tab.variables.replace("SINCE_TODAY", today.toISOString()),
  }}));
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      defaultTabs,
      defaultEditorToolsVisibility: true,
    }})
  );
</script>
</body>
</html>
"#,
        css = load(source, "graphiql.min.css"),
        react = load(source, "react.production.min.js"),
        react_dom = load(source, "react-dom.production.min.js"),
        graphiql = load(source, "graphiql.min.js"),
        graphql_ws = load(source, "graphql-ws.min.js"),
    )
}

/// `GET /graphql/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let content_type = |name: &str| {
        GRAPHIQL_ASSETS
            .iter()
            .find(|(n, ..)| *n == name)
            .map_or("text/plain; charset=utf-8", |(_, _, _, t, _)| *t)
    };
    match EMBEDDED.iter().find(|(n, _)| *n == name) {
        Some((name, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type(name)),
                // Pinned versions: the bytes of a name change only with a
                // new leadql build; a day of caching is safe.
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each committed integrity hash is the hash of the file embedded (a
    /// version moved in package-lock.json without its hash fails here).
    #[test]
    #[cfg_attr(leadql_graphiql_cdn, ignore = "built without npm: nothing embedded")]
    fn integrity_hashes_are_those_of_the_embedded_files() {
        use base64::Engine;
        use sha2::Digest;
        for (name, _, _, _, integrity) in GRAPHIQL_ASSETS {
            let (_, bytes) = EMBEDDED
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} is not embedded"));
            let hash =
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes));
            assert_eq!(*integrity, format!("sha384-{hash}"), "{name}");
        }
    }

    /// The versions in the list are the ones package.json pins.
    #[test]
    fn listed_versions_are_the_pinned_ones() {
        let package: serde_json::Value =
            serde_json::from_str(include_str!("../../graphiql/package.json")).unwrap();
        for (name, package_at_version, ..) in GRAPHIQL_ASSETS {
            let (package_name, version) = package_at_version.rsplit_once('@').unwrap();
            assert_eq!(
                package["dependencies"][package_name], *version,
                "{name}: {package_at_version}"
            );
        }
    }

    #[test]
    fn the_page_loads_every_file_from_where_it_is() {
        let embedded = html(Source::Embedded);
        let cdn = html(Source::Cdn);
        assert!(!embedded.contains("https://"), "{embedded}");
        assert!(!embedded.contains("id=\"note\""));
        assert!(cdn.contains("built without npm"), "{cdn}");
        for (name, package, path, _, integrity) in GRAPHIQL_ASSETS {
            assert!(
                embedded.contains(&format!("\"{ASSET_PREFIX}{name}\"")),
                "{name}"
            );
            assert!(
                cdn.contains(&format!(
                    "\"{CDN}{package}/{path}\" integrity=\"{integrity}\" crossorigin=\"anonymous\""
                )),
                "{name}: {cdn}"
            );
        }
    }
}
