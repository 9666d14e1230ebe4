//! GraphiQL, served by leadql itself: `GET /graphql` from a browser. The
//! scripts and styles are the npm registry's standalone builds, fetched at
//! build time (see `build.rs`) and embedded, so no CDN is needed.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/", $name))
    };
}

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        asset!("react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        asset!("react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        asset!("graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        asset!("graphiql.min.css"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        asset!("GRAPHIQL-LICENSE"),
    ),
];

/// Where the assets are served (under /graphql, so one route prefix is
/// enough for proxies and CORS).
pub const ASSET_PREFIX: &str = "/graphql/assets/";

/// The query GraphiQL opens with: it runs as is against `serve --demo`.
const DEFAULT_QUERY: &str = r#"# Welcome to leadql. Press Ctrl-Enter (or the ▶ button) to run this query.
# The Docs pane (top left) describes every type, field and filter.
query RecentLeads {
  leads(first: 5, orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }]) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      disposition
      lastActivityAt
      activities(last: 3) {
        nodes {
          timestamp
          type
          callStatus
          analysis { disposition summary }
          conversation {
            turnCount
            toolCalls { nodes { name arguments } }
          }
        }
      }
    }
  }
  leadFunnel { disposition count }
  callStats { attempts connected connectRate averageTurnCount }
}
"#;

/// The GraphiQL page.
pub fn page() -> Response {
    let default_query = serde_json::to_string(DEFAULT_QUERY).unwrap_or_else(|_| "\"\"".into());
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leadql · GraphiQL</title>
<link rel="stylesheet" href="{p}graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{p}react.production.min.js"></script>
<script src="{p}react-dom.production.min.js"></script>
<script src="{p}graphiql.min.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({{ url: new URL("/graphql", window.location.href).toString() }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      defaultQuery: {default_query},
      defaultEditorToolsVisibility: true,
    }})
  );
</script>
</body>
</html>
"#,
        p = ASSET_PREFIX
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// `GET /graphql/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
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
