// The files GraphiQL's page loads, from the npm packages pinned in
// graphiql/package-lock.json: the name leadql serves each under, its
// package and version, the file in the package, its content type, and the
// Subresource Integrity hash of that file. Read by build.rs (which files
// to embed) and by src/graphql/graphiql.rs (the page; and, built without
// npm, the CDN URLs with these hashes). A unit test checks each hash
// against the embedded file, so the list stays true when versions move.
const GRAPHIQL_ASSETS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "react.production.min.js",
        "react@18.3.1",
        "umd/react.production.min.js",
        "text/javascript; charset=utf-8",
        "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    ),
    (
        "react-dom.production.min.js",
        "react-dom@18.3.1",
        "umd/react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    ),
    (
        "graphiql.min.js",
        "graphiql@4.1.2",
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        "sha384-9XdHu7ajgGJziD4J1zNBKQ842Q/+zZfDv+ib1eMhZWBH6hPAs806x+Jbcf0yNO6B",
    ),
    (
        "graphql-ws.min.js",
        "graphql-ws@6.4.2",
        "umd/graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        "sha384-mxvR4Mzbsb6QVx/9xI2gtQikQA6m8zMDBFnu3l//4/ROsWt7y2sUGWd+/tYQqDm7",
    ),
    (
        "graphiql.min.css",
        "graphiql@4.1.2",
        "graphiql.min.css",
        "text/css; charset=utf-8",
        "sha384-1el1QShFBnnXTx9x/Cprg82hZWKt0ry29OAYIXt05swbi0KcZDFoj0CWguMpopJr",
    ),
];
