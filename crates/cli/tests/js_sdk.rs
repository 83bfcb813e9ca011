//! The JavaScript client SDK (`sdk/js`): its Node.js test-runner suites,
//! which start real `cloudlet serve` processes of their own; its types under
//! strict TypeScript; the real `@cloudbase/js-sdk`; and pages in headless
//! Chromium. Tests that need a package from npm skip, saying why, when it
//! cannot be had.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const TYPESCRIPT: &str = "typescript@5.9.3";
const CLOUDBASE_JS_SDK: &str = "@cloudbase/js-sdk@3.7.0";
/// The Node.js WebSocket package that js-sdk asks for in Node.js.
const WS: &str = "ws@8.18.3";
const PLAYWRIGHT_CORE: &str = "playwright-core@1.65.2";

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/js")
}

/// The SDK built by its own `build.mjs` into a fresh folder.
fn build() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let built = Command::new("node")
        .arg(sdk_dir().join("build.mjs"))
        .arg(out.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    out
}

/// Runs one suite of `sdk/js/test` with `node --test`, with `node_path`
/// for the packages it requires and `env` besides; fails with its report.
fn run_suite(file: &str, node_path: &[PathBuf], env: &[(&str, &Path)]) {
    let dist = build();
    let mut command = Command::new("node");
    command
        .arg("--test")
        .arg(sdk_dir().join("test").join(file))
        .env("CLOUDLET_BIN", support::cloudlet_bin())
        .env("CLOUDLET_SDK_DIST", dist.path())
        .env("NODE_PATH", std::env::join_paths(node_path).unwrap())
        .env_remove("CLOUDLET_SERVER")
        .env_remove("CLOUDLET_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{file} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn call_function_and_cdn_work_against_a_real_server() {
    if support::node_found() {
        run_suite("call-function.test.mjs", &[], &[]);
    }
}

#[test]
fn call_http_function_works_and_streams_against_a_real_server() {
    if support::node_found() {
        run_suite("call-http-function.test.mjs", &[], &[]);
    }
}

#[test]
fn publish_reaches_subscribed_functions_through_a_real_server() {
    if support::node_found() {
        run_suite("publish.test.mjs", &[], &[]);
    }
}

#[test]
fn the_commonjs_and_browser_builds_match_the_esm_build() {
    if support::node_found() {
        run_suite("builds.test.mjs", &[], &[]);
    }
}

#[test]
fn the_types_accept_the_seeds_code_under_strict_typescript() {
    if !support::npm_reachable() {
        return;
    }
    let modules = support::npm_packages(TYPESCRIPT, &[TYPESCRIPT]);
    let out = Command::new("node")
        .arg(modules.join("typescript/bin/tsc"))
        .args(["--noEmit", "--strict", "--module", "node16"])
        .args(["--moduleResolution", "node16", "--target", "es2022"])
        .args(["--lib", "es2022,dom", "--typeRoots", "no-type-roots"])
        .arg("test/types.ts")
        .current_dir(sdk_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_real_cloudbase_js_sdk_calls_functions_through_cloudlet() {
    if !support::npm_reachable() {
        return;
    }
    let modules = support::npm_packages("js-sdk", &[CLOUDBASE_JS_SDK, WS]);
    run_suite("cloudbase-js-sdk.test.mjs", &[modules], &[]);
}

#[test]
fn pages_in_headless_chromium_call_upload_stream_and_are_refused_from_other_origins() {
    if !support::npm_reachable() {
        return;
    }
    let Some(chromium) = support::chromium() else {
        return;
    };
    let modules = support::npm_packages(PLAYWRIGHT_CORE, &[PLAYWRIGHT_CORE]);
    run_suite("browser.test.mjs", &[modules], &[("CHROMIUM", &chromium)]);
}

#[test]
fn the_readmes_sdk_example_runs_as_written() {
    // The example streams from `express-sse`, whose deploy installs Express.
    if support::npm_reachable() {
        run_suite("readme.test.mjs", &[], &[]);
    }
}
