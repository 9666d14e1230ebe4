//! Fetches GraphiQL (and React) from the npm registry at the versions
//! pinned in `graphiql/package-lock.json` and leaves the standalone builds
//! in OUT_DIR, where `src/graphql/graphiql.rs` embeds them. Third-party
//! bundles are never committed; the binary serves them itself, so GraphiQL
//! works without internet access.
//!
//! Needs `npm` (and the registry, or npm's cache) when building. Set
//! `LEADQL_GRAPHIQL_DIR` to a directory that already holds the five files
//! to build without npm.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: &[(&str, &str)] = &[
    ("graphiql/graphiql.min.js", "graphiql.min.js"),
    ("graphiql/graphiql.min.css", "graphiql.min.css"),
    (
        "react/umd/react.production.min.js",
        "react.production.min.js",
    ),
    (
        "react-dom/umd/react-dom.production.min.js",
        "react-dom.production.min.js",
    ),
    ("graphiql/LICENSE", "GRAPHIQL-LICENSE"),
];

fn main() {
    test_backend();
    println!("cargo:rerun-if-changed=graphiql/package.json");
    println!("cargo:rerun-if-changed=graphiql/package-lock.json");
    println!("cargo:rerun-if-env-changed=LEADQL_GRAPHIQL_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target = out.join("graphiql");
    std::fs::create_dir_all(&target).expect("create OUT_DIR/graphiql");

    if let Ok(dir) = std::env::var("LEADQL_GRAPHIQL_DIR") {
        for (_, name) in FILES {
            copy(&Path::new(&dir).join(name), &target.join(name));
        }
        return;
    }

    let npm_dir = out.join("npm");
    std::fs::create_dir_all(&npm_dir).expect("create OUT_DIR/npm");
    for file in ["package.json", "package-lock.json"] {
        copy(&Path::new("graphiql").join(file), &npm_dir.join(file));
    }
    let modules = npm_dir.join("node_modules");
    if !FILES.iter().all(|(from, _)| modules.join(from).exists()) {
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(&npm_dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("GraphiQL assets: could not run `npm ci` ({e}); install Node.js/npm, or set LEADQL_GRAPHIQL_DIR")
            });
        assert!(
            status.success(),
            "GraphiQL assets: `npm ci` failed in {}",
            npm_dir.display()
        );
    }
    for (from, name) in FILES {
        copy(&modules.join(from), &target.join(name));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// Tests that apply to one database only are compiled as ignored (and so
/// reported as skipped) on the other: `leadql_test_postgres` is set when
/// `LEADQL_TEST_DATABASE_URL` names a PostgreSQL server.
fn test_backend() {
    println!("cargo:rustc-check-cfg=cfg(leadql_test_postgres)");
    println!("cargo:rerun-if-env-changed=LEADQL_TEST_DATABASE_URL");
    if std::env::var("LEADQL_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=leadql_test_postgres");
    }
}
