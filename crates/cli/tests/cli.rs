//! End-to-end tests of the `cloudlet` binary: real server processes, real
//! sockets, the CLI run as a child process the way a user runs it.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{cloudlet_bin, examples_dir, write_function, TestServer};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// The ID from the `request id: …` line on stderr.
fn request_id(output: &Output) -> String {
    stderr(output)
        .lines()
        .find_map(|l| l.strip_prefix("request id: "))
        .unwrap_or_else(|| panic!("no request id in stderr: {}", stderr(output)))
        .trim()
        .to_owned()
}

fn example(name: &str) -> String {
    examples_dir().join(name).to_str().unwrap().to_owned()
}

/// Runs the CLI against a server that is not there, for commands that must fail
/// before any request.
fn cli_offline(args: &[&str]) -> Output {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    Command::new(cloudlet_bin())
        .args(args)
        .env("CLOUDLET_SERVER", format!("http://127.0.0.1:{port}"))
        .env_remove("CLOUDLET_KEY")
        .output()
        .unwrap()
}

#[test]
fn deploy_invoke_and_logs() {
    let server = TestServer::start(&[]);

    let out = server.cli(&["deploy", &example("add")]);
    assert_ok(&out);
    let summary = stdout(&out);
    assert!(summary.contains("add"), "{summary}");
    assert!(summary.contains("default"), "{summary}");
    let out = server.cli(&["deploy", &example("helloworld"), "--json"]);
    assert_ok(&out);
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["name"], "helloworld");
    assert_eq!(info["current"]["config"]["handler"]["export"], "handler");

    let out = server.cli(&["invoke", "add", "--data", r#"{"x":1,"y":2}"#]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "3\n");
    let add_id = request_id(&out);

    let out = server.cli(&["logs", &add_id]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("succeeded"), "{text}");
    assert!(text.contains("add"), "{text}");
    assert!(text.contains(&add_id), "{text}");
    assert!(text.contains("cli"), "the trigger: {text}");

    let out = server.cli(&["logs", &add_id, "--json"]);
    assert_ok(&out);
    let record: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(record["function"], "add");
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["result"], "3");
    assert_eq!(record["trigger"], "cli");

    let out = server.cli(&["invoke", "helloworld"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "\"Message from helloworld\"\n");
    let out = server.cli(&["logs", &request_id(&out)]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("helloworld"), "{text}");
    assert!(text.contains("-- hello world"), "{text}");

    // The event from stdin, and a request ID chosen by the caller.
    let mut child = Command::new(cloudlet_bin())
        .args([
            "invoke",
            "add",
            "--data-file",
            "-",
            "--request-id",
            "my-req.1",
        ])
        .env("CLOUDLET_SERVER", &server.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"x": 40, "y": 2}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert_eq!(stdout(&out), "42\n");
    assert_eq!(request_id(&out), "my-req.1");
    assert_ok(&server.cli(&["logs", "my-req.1"]));
}

#[test]
fn functions_and_envs_commands() {
    let server = TestServer::start(&[]);
    assert_ok(&server.cli(&["deploy", &example("add")]));
    assert_ok(&server.cli(&[
        "deploy",
        &example("add"),
        "--name",
        "plus",
        "--env",
        "staging",
    ]));

    let out = server.cli(&["functions", "list"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("add"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("plus"), "{}", stdout(&out));
    let out = server.cli(&["functions", "list", "--env", "staging", "--json"]);
    assert_ok(&out);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["name"], "plus");

    let out = server.cli(&["functions", "show", "add"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("index.main"), "{text}");
    assert!(text.contains("3 s"), "the default timeout: {text}");
    let out = server.cli(&["functions", "show", "add", "--json"]);
    assert_ok(&out);
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["name"], "add");
    assert_eq!(info["env"], "default");

    let out = server.cli(&["envs", "list"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("staging"), "{}", stdout(&out));
    let out = server.cli(&["envs", "key", "staging"]);
    assert_ok(&out);
    assert!(!stdout(&out).trim().is_empty());

    let out = server.cli(&[
        "invoke",
        "plus",
        "--env",
        "staging",
        "-d",
        r#"{"x":2,"y":2}"#,
    ]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "4\n");

    let out = server.cli(&["functions", "rm", "add"]);
    assert_ok(&out);
    let out = server.cli(&["functions", "list"]);
    assert_ok(&out);
    assert!(!stdout(&out).contains("add"), "{}", stdout(&out));

    for name in ["add", "nosuchfunction"] {
        let out = server.cli(&["invoke", name]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("FUNCTION_NOT_FOUND"),
            "{}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
    let out = server.cli(&["functions", "rm", "add"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("FUNCTION_NOT_FOUND"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_node_runtime_runs_on_the_js_engine_where_there_is_no_node_engine_and_says_so() {
    let server = TestServer::start(&["--node-runtimes-on", "js"]);
    let root = tempfile::tempdir().unwrap();
    let dir = write_function(
        root.path(),
        "nodeish",
        &[
            ("index.js", "exports.main = async (e) => e.x + e.y"),
            ("config.json", r#"{"runtime": "Nodejs18.15"}"#),
        ],
    );
    let deployed = server.cli(&["deploy", &dir]);
    assert_ok(&deployed);
    assert!(
        stdout(&deployed).contains("js engine"),
        "{}",
        stdout(&deployed)
    );
    assert!(
        stderr(&deployed).contains("Nodejs18.15 runs on the js engine"),
        "{}",
        stderr(&deployed)
    );
    let shown = server.cli(&["functions", "show", "nodeish"]);
    assert_ok(&shown);
    assert!(
        stdout(&shown).contains("--node-runtimes-on js"),
        "{}",
        stdout(&shown)
    );
    let invoked = server.cli(&["invoke", "nodeish", "--data", r#"{"x":1,"y":2}"#]);
    assert_ok(&invoked);
    assert_eq!(stdout(&invoked).trim(), "3");
    let python = write_function(
        root.path(),
        "snake",
        &[
            ("index.js", "exports.main = async () => 1"),
            ("config.json", r#"{"runtime": "Python3.9"}"#),
        ],
    );
    let refused = server.cli(&["deploy", &python]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Nodejs18.15"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn status_shows_what_the_records_and_the_instances_hold() {
    let server = TestServer::start(&["--records-max-bytes", "50000000"]);
    assert_ok(&server.cli(&["deploy", &example("add")]));
    assert_ok(&server.cli(&["invoke", "add", "--data", r#"{"x":1,"y":2}"#]));
    // Records are written in batches: asked again until none is pending.
    let status = loop {
        let status = server.cli(&["status", "--json"]);
        assert_ok(&status);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        if status["records"]["pending"] == 0 {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let records = &status["records"];
    assert_eq!(records["count"], 1, "{status}");
    assert_eq!(records["maxBytes"], 50_000_000, "{status}");
    assert!(records["bytes"].as_u64().unwrap() > 0, "{status}");
    let instances = &status["instances"];
    assert_eq!(instances["count"], 1, "{status}");
    assert!(
        instances["memoryHeldBytes"].as_u64().unwrap() > 0,
        "{status}"
    );
    let human = server.cli(&["status"]);
    assert_ok(&human);
    assert!(
        stdout(&human).starts_with("records      "),
        "{}",
        stdout(&human)
    );
}

#[test]
fn a_function_that_throws_fails_the_command_with_its_message() {
    let server = TestServer::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_function(
        tmp.path(),
        "boom",
        &[(
            "index.js",
            "exports.main = async () => { console.log('about to fail'); throw new Error('kaboom') }",
        )],
    );
    assert_ok(&server.cli(&["deploy", &dir]));

    let out = server.cli(&["invoke", "boom"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error: FUNCTION_INVOCATION_FAILED: "), "{err}");
    assert!(err.contains("kaboom"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    let out = server.cli(&["logs", &request_id(&out)]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("failed"), "{text}");
    assert!(text.contains("kaboom"), "{text}");
    assert!(text.contains("about to fail"), "{text}");
}

#[test]
fn invoke_qualifier_runs_a_past_version() {
    let server = TestServer::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let source = |v: &str| format!("exports.main = async () => '{v}'");
    let dir = write_function(tmp.path(), "f", &[("index.js", &source("one"))]);
    let out = server.cli(&["deploy", &dir, "--json"]);
    assert_ok(&out);
    let first: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let first = first["current"]["version"].as_str().unwrap().to_owned();
    write_function(tmp.path(), "f", &[("index.js", &source("two"))]);
    assert_ok(&server.cli(&["deploy", &dir]));

    let out = server.cli(&["invoke", "f", "--qualifier", &first[..12]]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "\"one\"\n");
    let out = server.cli(&["invoke", "f"]);
    assert_eq!(stdout(&out), "\"two\"\n");
}

#[test]
fn bad_input_fails_locally_before_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_function(
        tmp.path(),
        "typo",
        &[
            ("index.js", "exports.main = () => 1"),
            ("config.json", r#"{"timout": 5}"#),
        ],
    );
    // No server is listening: reaching the config error proves it was found locally.
    let out = cli_offline(&["deploy", &dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("config.json"), "{err}");
    assert!(err.contains("timout"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");

    let dir = write_function(
        tmp.path(),
        "nohandler",
        &[("main.js", "exports.main = () => 1")],
    );
    let out = cli_offline(&["deploy", &dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("index.js"), "{}", stderr(&out));

    let dir = write_function(
        tmp.path(),
        "9lives",
        &[("index.js", "exports.main = () => 1")],
    );
    let out = cli_offline(&["deploy", &dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--name"), "{}", stderr(&out));

    let out = cli_offline(&["invoke", "add", "--data", "{x:1}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));

    let out = cli_offline(&["invoke", "add"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("cannot reach"), "{err}");
    assert!(err.contains("cloudlet serve"), "{err}");

    let out = cli_offline(&["invoke", "Not/A/Name"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A `cloudlet dev` or `cloudlet serve` child process, killed on drop.
struct ChildServer {
    url: String,
    child: std::process::Child,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildServer {
    fn invoke(&self, name: &str, data: &str) -> Output {
        Command::new(cloudlet_bin())
            .args(["invoke", name, "--server", &self.url, "--data", data])
            .env_remove("CLOUDLET_KEY")
            .output()
            .unwrap()
    }

    /// Invokes until `done` accepts the output, for at most `limit`.
    fn invoke_until(&self, name: &str, data: &str, done: impl Fn(&Output) -> bool) -> Output {
        let limit = Duration::from_secs(10);
        let start = Instant::now();
        loop {
            let out = self.invoke(name, data);
            if done(&out) {
                return out;
            }
            assert!(
                start.elapsed() < limit,
                "gave up after {limit:?}; last stdout: {} stderr: {}",
                stdout(&out),
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn dev_redeploys_on_change_and_removes_deleted_functions() {
    let functions = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    copy_dir(&examples_dir(), functions.path());
    // Not a function folder: ignored.
    std::fs::create_dir(functions.path().join("shared")).unwrap();
    std::fs::write(
        functions.path().join("shared/util.js"),
        "module.exports = 1",
    )
    .unwrap();

    let dev = start_dev(functions.path(), data.path());

    // The first deploys happen right after the server listens.
    let out = dev.invoke_until("add", r#"{"x":3,"y":4}"#, |o| o.status.success());
    assert_eq!(stdout(&out), "7\n");
    let out = dev.invoke_until("helloworld", "{}", |o| o.status.success());
    assert_eq!(stdout(&out), "\"Message from helloworld\"\n");
    let out = dev.invoke("shared", "{}");
    assert!(
        stderr(&out).contains("FUNCTION_NOT_FOUND"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        functions.path().join("add/index.js"),
        "exports.main = async (event) => event.x * event.y\n",
    )
    .unwrap();
    dev.invoke_until("add", r#"{"x":3,"y":4}"#, |o| stdout(o) == "12\n");

    std::fs::remove_dir_all(functions.path().join("add")).unwrap();
    dev.invoke_until("add", "{}", |o| {
        o.status.code() == Some(1) && stderr(o).contains("FUNCTION_NOT_FOUND")
    });

    // A new folder is picked up too.
    std::fs::create_dir(functions.path().join("twice")).unwrap();
    std::fs::write(
        functions.path().join("twice/index.js"),
        "exports.main = (event) => event.n * 2\n",
    )
    .unwrap();
    let out = dev.invoke_until("twice", r#"{"n":21}"#, |o| o.status.success());
    assert_eq!(stdout(&out), "42\n");
    assert_ok(&dev.invoke("helloworld", "{}"));
}

fn start_dev(dir: &Path, data: &Path) -> ChildServer {
    let mut child = spawn_dev(dir, data);
    let url = support::read_listening_url(&mut child);
    ChildServer { url, child }
}

/// `cloudlet dev DIR` on a free port with its stdout piped.
fn spawn_dev(dir: &Path, data: &Path) -> std::process::Child {
    Command::new(cloudlet_bin())
        .arg("dev")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("CLOUDLET_ADMIN_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn dev_says_which_engine_each_function_got() {
    let functions = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write_function(
        functions.path(),
        "plain",
        &[("index.js", "exports.main = async () => 1")],
    );
    let mut child = spawn_dev(functions.path(), data.path());
    let stdout = child.stdout.take().unwrap();
    let deployed = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find(|line| line.starts_with("deployed plain"));
    let _ = child.kill();
    let _ = child.wait();
    let deployed = deployed.expect("dev deploys the folder");
    assert!(deployed.ends_with(", js engine)"), "{deployed}");
}

/// A CloudBase CLI project: the functions under `functionRoot`, their settings
/// in `cloudbaserc.json` (flat, or under `config` as older projects have them).
#[test]
fn dev_applies_the_settings_of_cloudbaserc_and_follows_its_changes() {
    let project = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = project.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let rc = |greeting: &str| {
        format!(
            r#"{{
              "envId": "{{{{env.ENV_ID}}}}",
              "functionRoot": "./functions",
              "functions": [
                {{"name": "settings", "timeout": 7, "envVariables": {{"GREETING": "{greeting}"}},
                  "installDependency": true, "ignore": ["node_modules"]}},
                {{"name": "legacy", "config": {{"timeout": 2, "envVariables": {{"A": "1"}}, "vpc": {{}}}},
                  "handler": "app.run"}}
              ]
            }}"#
        )
    };
    write("cloudbaserc.json", &rc("hi"));
    write(
        "functions/settings/index.js",
        "exports.main = async (event, context) => [process.env.GREETING, context.time_limit_in_ms]",
    );
    // The folder's own config.json wins over the project file.
    write(
        "functions/settings/config.json",
        r#"{"envVariables": {"OWN": "yes"}}"#,
    );
    // No index.js and no config.json: only the project file makes this a function.
    write(
        "functions/legacy/app.js",
        "exports.run = async (event, context) => [process.env.A, context.time_limit_in_ms]",
    );

    let dev = start_dev(project.path(), data.path());
    let out = dev.invoke_until("settings", "{}", |o| o.status.success());
    // config.json's envVariables replace the project's: the more specific file wins.
    assert_eq!(stdout(&out), "[null,7000]\n");
    let out = dev.invoke_until("legacy", "{}", |o| o.status.success());
    assert_eq!(stdout(&out), "[\"1\",2000]\n");

    // Without its own envVariables, the function gets the project's; editing
    // the project file redeploys it.
    write("functions/settings/config.json", "{}");
    dev.invoke_until("settings", "{}", |o| stdout(o) == "[\"hi\",7000]\n");
    write("cloudbaserc.json", &rc("hello"));
    dev.invoke_until("settings", "{}", |o| stdout(o) == "[\"hello\",7000]\n");
    assert_eq!(stdout(&dev.invoke("legacy", "{}")), "[\"1\",2000]\n");

    // `cloudlet deploy` of a folder in the project applies the same settings.
    let out = Command::new(cloudlet_bin())
        .arg("deploy")
        .arg(project.path().join("functions/legacy"))
        .args(["--name", "copy", "--server", &dev.url])
        .env_remove("CLOUDLET_KEY")
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(stdout(&dev.invoke("copy", "{}")), "[\"1\",2000]\n");
}

/// `serve --config FILE`: the file's settings apply, and CLOUDLET_* variables
/// override them.
#[test]
fn serve_reads_a_config_file_under_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cloudlet.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = {:?}\nmax-body-bytes = 100000\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let start = |env_limit: Option<&str>| {
        let mut command = Command::new(cloudlet_bin());
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("CLOUDLET_ADMIN_KEY")
            .env_remove("CLOUDLET_MAX_BODY_BYTES")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(limit) = env_limit {
            command.env("CLOUDLET_MAX_BODY_BYTES", limit);
        }
        let mut child = command.spawn().unwrap();
        let url = support::read_listening_url(&mut child);
        ChildServer { url, child }
    };
    let padded = format!(r#"{{"x":1,"y":2,"pad":"{}"}}"#, "p".repeat(200));

    let server = start(Some("64"));
    let out = server.invoke("add", &padded);
    assert!(
        stderr(&out).contains("EXCEED_REQUEST_SIZE_LIMIT"),
        "{}",
        stderr(&out)
    );
    drop(server);

    let server = start(None);
    let out = Command::new(cloudlet_bin())
        .args(["deploy", &example("add"), "--server", &server.url])
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(stdout(&server.invoke("add", &padded)), "3\n");
}

#[test]
fn serve_refuses_a_public_listener_without_an_admin_key() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(cloudlet_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("CLOUDLET_ADMIN_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("without an admin key"),
        "{}",
        stderr(&output)
    );
    assert!(!stdout(&output).contains("listening"));
}

#[test]
fn envs_cors_sets_shows_and_removes_an_envs_cors_settings() {
    let server = TestServer::start(&[]);
    let out = server.cli(&["envs", "cors", "web"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no CORS settings"));
    let out = server.cli(&[
        "envs",
        "cors",
        "web",
        "--origin",
        "https://app.example.com",
        "--origin",
        "https://*.example.org",
        "--method",
        "POST",
        "--max-age",
        "60",
    ]);
    assert_ok(&out);
    let set: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        set["allowedOrigins"],
        serde_json::json!(["https://app.example.com", "https://*.example.org"])
    );
    let out = server.cli(&["envs", "cors", "web"]);
    assert_ok(&out);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown, set);
    assert_eq!(shown["maxAgeSeconds"], 60);
    let bad = server.cli(&["envs", "cors", "web", "--origin", "app.example.com"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("INVALID_PARAM"));
    assert_ok(&server.cli(&["envs", "cors", "web", "--remove"]));
    let out = server.cli(&["envs", "cors", "web"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no CORS settings"));
}
