//! Fetches GraphiQL (and React) from the npm registry at the versions
//! pinned in `graphiql/package-lock.json` and leaves the standalone builds
//! in OUT_DIR, where `src/graphql/graphiql.rs` embeds them. Third-party
//! bundles are never committed; the binary serves them itself, so GraphiQL
//! works without internet access.
//!
//! Uses `npm` (and the registry, or npm's cache) when building. Set
//! `LEADQL_GRAPHIQL_DIR` to a directory that already holds the files to
//! embed them without npm. With neither, the build still succeeds: nothing
//! is embedded (cfg `leadql_graphiql_cdn`) and the page loads the same
//! pinned files from a public CDN, checked by their Subresource Integrity
//! hashes (`graphiql/assets.rs`). `LEADQL_NPM` names the npm to run
//! (default `npm`; `none` builds as if there were none).

use std::path::{Path, PathBuf};
use std::process::Command;

include!("graphiql/assets.rs");

/// (file in node_modules, name in OUT_DIR/graphiql) of everything embedded.
fn files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = GRAPHIQL_ASSETS
        .iter()
        .map(|(name, package, path, _, _)| {
            let package = package.rsplit_once('@').map_or(*package, |(p, _)| p);
            (format!("{package}/{path}"), name.to_string())
        })
        .collect();
    files.push(("graphiql/LICENSE".into(), "GRAPHIQL-LICENSE".into()));
    files.push(("graphql-ws/LICENSE.md".into(), "GRAPHQL-WS-LICENSE".into()));
    files
}

fn main() {
    test_backend();
    test_browser();
    println!("cargo:rerun-if-changed=graphiql/package.json");
    println!("cargo:rerun-if-changed=graphiql/package-lock.json");
    println!("cargo:rerun-if-env-changed=LEADQL_GRAPHIQL_DIR");
    println!("cargo:rerun-if-env-changed=LEADQL_NPM");
    println!("cargo:rerun-if-changed=graphiql/assets.rs");
    println!("cargo:rustc-check-cfg=cfg(leadql_graphiql_cdn)");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target = out.join("graphiql");
    std::fs::create_dir_all(&target).expect("create OUT_DIR/graphiql");

    let files = files();
    if let Ok(dir) = std::env::var("LEADQL_GRAPHIQL_DIR") {
        for (_, name) in &files {
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
    let npm = std::env::var("LEADQL_NPM").unwrap_or_else(|_| "npm".into());
    let why = if npm == "none" {
        Some("LEADQL_NPM=none".to_string())
    } else if files.iter().all(|(from, _)| modules.join(from).exists()) {
        None
    } else {
        let ran = Command::new(&npm)
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
            ])
            .current_dir(&npm_dir)
            .status();
        match ran {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("`{npm} ci` failed ({status})")),
            Err(e) => Some(format!("could not run `{npm} ci` ({e})")),
        }
    };
    if let Some(why) = why {
        println!(
            "cargo:warning=GraphiQL is not embedded: {why}; its page will load the pinned files from cdn.jsdelivr.net (install Node.js/npm to embed them)"
        );
        println!("cargo:rustc-cfg=leadql_graphiql_cdn");
        return;
    }
    for (from, name) in &files {
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

/// The GraphiQL browser test (tests/it/graphiql_browser.rs) needs Node.js,
/// playwright-core (`npm ci` in tests/browser) and a chromium binary
/// (`LEADQL_CHROMIUM`, else `chromium` on the PATH): with all three the
/// cfg `leadql_test_browser` is set, otherwise the test is compiled as
/// ignored and reported as skipped, saying what is missing.
fn test_browser() {
    println!("cargo:rustc-check-cfg=cfg(leadql_test_browser)");
    println!("cargo:rerun-if-env-changed=LEADQL_CHROMIUM");
    println!("cargo:rerun-if-changed=tests/browser");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    let playwright = Path::new("tests/browser/node_modules/playwright-core/package.json").exists();
    let chromium = match std::env::var("LEADQL_CHROMIUM") {
        Ok(path) => Path::new(&path).exists(),
        Err(_) => std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join("chromium").exists())
        }),
    };
    if node && playwright && chromium {
        println!("cargo:rustc-cfg=leadql_test_browser");
    }
}
