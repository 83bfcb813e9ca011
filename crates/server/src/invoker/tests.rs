//! The invocation service without HTTP: a real SQLite store and js engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::{
    EnvId, ErrorCode, FunctionName, InvocationStatus, LogLevel, LogLine, Package, RequestId,
    VersionId,
};
use cloudlet_runtime::js::JsEngine;
use cloudlet_runtime::{
    DeployedFunction, Engine, EngineError, EngineLimits, EngineUsage, Event, InvocationOutcome,
    InvocationRequest, Output, ResponseStream, StreamEnd,
};
use cloudlet_store::sqlite::SqliteOptions;
use cloudlet_store::{FunctionStore, NewVersion, RecordStore, SqliteStore};
use tokio::sync::mpsc;

use super::{Invocation, InvokeContext, Invoker, Qualifier, Target};
use crate::auth::{AuthPolicy, Credential};
use crate::engines::Engines;

struct Fixture {
    invoker: std::sync::Arc<Invoker>,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn fixture(auth: AuthPolicy, max_running: usize) -> Fixture {
    let js = Arc::new(JsEngine::new(EngineLimits::default()));
    fixture_with(auth, max_running, Engines::js_only(js))
}

fn fixture_with(auth: AuthPolicy, max_running: usize, engines: Engines) -> Fixture {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).expect("a store"));
    let invoker = Invoker::new(
        store.clone(),
        store.clone(),
        engines,
        auth,
        max_running,
        false,
        super::CallPolicy::default(),
    );
    Fixture {
        invoker,
        store,
        _dir: dir,
    }
}

fn open() -> AuthPolicy {
    AuthPolicy::Open
}

impl Fixture {
    /// Deploys `source` as `name` and returns the new version's ID.
    async fn deploy(&self, name: &str, source: &str) -> String {
        let files = BTreeMap::from([("index.js".to_owned(), Bytes::from(source.to_owned()))]);
        let package = Package::from_files(files).expect("a valid package");
        let (env, name) = (
            EnvId::default_env(),
            FunctionName::parse(name).expect("a name"),
        );
        self.store
            .deploy(NewVersion {
                env: env.clone(),
                name: name.clone(),
                version: package.version().clone(),
                config: package.config().clone(),
                archive: package.to_tar_gz().expect("an archive").into(),
            })
            .await
            .expect("deployed");
        let version = package.version().to_string();
        let function = Arc::new(DeployedFunction::new(env, name, Arc::new(package)));
        let engine = self.invoker.prepare(&function).await.expect("an engine");
        self.invoker.install(function, engine);
        version
    }

    async fn target(&self, name: &str, qualifier: Qualifier) -> Target {
        let access = self
            .invoker
            .authorize(&EnvId::default_env(), &Credential::None)
            .await
            .expect("access");
        Target {
            access,
            name: FunctionName::parse(name).expect("a name"),
            qualifier,
        }
    }

    async fn invoke(
        &self,
        name: &str,
        event: &str,
    ) -> Result<super::Invocation, super::InvokeError> {
        self.invoke_version(name, Qualifier::Latest, event).await
    }

    async fn invoke_version(
        &self,
        name: &str,
        qualifier: Qualifier,
        event: &str,
    ) -> Result<super::Invocation, super::InvokeError> {
        self.invoke_as(RequestId::generate(), name, qualifier, event)
            .await
    }

    async fn invoke_as(
        &self,
        request_id: RequestId,
        name: &str,
        qualifier: Qualifier,
        event: &str,
    ) -> Result<super::Invocation, super::InvokeError> {
        let context = InvokeContext::new(request_id, "test");
        let target = self.target(name, qualifier).await;
        self.invoker
            .invoke(target, Event::Json(Bytes::from(event.to_owned())), context)
            .await
    }
}

#[tokio::test]
async fn an_invocation_runs_the_current_version_and_is_recorded() {
    let f = fixture(open(), 8);
    f.deploy("add", "exports.main = async (e) => e.x + e.y")
        .await;
    let done = f.invoke("add", r#"{"x":1,"y":2}"#).await.expect("invoked");
    assert_eq!(done.result.expect("a result").json(), Some("3"));
    let record = f
        .store
        .record(&EnvId::default_env(), &done.request_id)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(record.version, done.version);
    assert_eq!(record.trigger, "test");
}

#[tokio::test]
async fn an_unknown_function_is_not_found() {
    let f = fixture(open(), 8);
    let error = f.invoke("nope", "{}").await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::FunctionNotFound);
}

#[tokio::test]
async fn a_malformed_event_is_the_callers_error_and_nothing_runs() {
    let f = fixture(open(), 8);
    f.deploy("add", "exports.main = async (e) => e.x + e.y")
        .await;
    let error = f.invoke("add", r#"{"x":"#).await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::InvalidParam);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_past_the_server_limit_are_refused() {
    let f = Arc::new(fixture(open(), 1));
    f.deploy(
        "slow",
        "exports.main = () => new Promise((r) => setTimeout(() => r(1), 500))",
    )
    .await;
    let first = {
        let f = f.clone();
        tokio::spawn(async move { f.invoke("slow", "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = f.invoke("slow", "{}").await.expect_err("refused");
    assert_eq!(second.code, ErrorCode::ExceedConcurrentRequestLimit);
    assert_eq!(
        first
            .await
            .expect("joined")
            .expect("ran")
            .result
            .expect("1")
            .json(),
        Some("1")
    );
    assert_eq!(f.invoker.running(), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engines_refusal_leaves_no_record() {
    let js = JsEngine::new(EngineLimits {
        max_instances_per_function: 1,
        ..EngineLimits::default()
    });
    let f = Arc::new(fixture_with(open(), 8, Engines::js_only(Arc::new(js))));
    f.deploy(
        "slow",
        "exports.main = () => new Promise((r) => setTimeout(() => r(1), 500))",
    )
    .await;
    let first = {
        let f = f.clone();
        tokio::spawn(async move { f.invoke("slow", "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused_id = RequestId::generate();
    let refused = f
        .invoke_as(refused_id.clone(), "slow", Qualifier::Latest, "{}")
        .await
        .expect_err("refused");
    assert_eq!(refused.code, ErrorCode::FunctionExceedResourceLimit);
    first.await.expect("joined").expect("ran");
    f.store.flush().await.expect("flushed");
    let record = f.store.record(&EnvId::default_env(), &refused_id).await;
    assert_eq!(record.expect("read"), None);
}

#[tokio::test]
async fn only_the_admin_key_or_the_envs_own_key_get_access() {
    let addr = "10.0.0.1:8080".parse().expect("an address");
    let f = fixture(
        AuthPolicy::for_listener(addr, Some("admin")).expect("a policy"),
        8,
    );
    let env = EnvId::default_env();
    let key = f.store.issue_env_key(&env).await.expect("a key");
    for (credential, allowed) in [
        (Credential::None, false),
        (Credential::Key("wrong".into()), false),
        (Credential::Key("admin".into()), true),
        (Credential::Key(key), true),
    ] {
        let access = f.invoker.authorize(&env, &credential).await;
        assert_eq!(access.is_ok(), allowed, "{credential:?}");
        if let Err(error) = access {
            assert_eq!(error.code, ErrorCode::PermissionDenied);
        }
    }
}

#[tokio::test]
async fn a_service_that_shuts_down_refuses_new_invocations() {
    let f = fixture(open(), 8);
    f.deploy("add", "exports.main = async (e) => e.x + e.y")
        .await;
    f.invoker.begin_shutdown();
    let error = f.invoke("add", "{}").await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::ServiceUnavailable);
}

#[tokio::test]
async fn a_qualifier_runs_a_past_version_and_the_record_names_it() {
    let f = fixture(open(), 8);
    let first = f.deploy("f", "exports.main = async () => 'first'").await;
    let second = f.deploy("f", "exports.main = async () => 'second'").await;
    for qualifier in [first.clone(), first[..12].to_owned()] {
        let done = f
            .invoke_version("f", Qualifier::parse(&qualifier), "{}")
            .await
            .expect("invoked");
        assert_eq!(done.result.expect("a result").json(), Some(r#""first""#));
        assert_eq!(done.version.as_str(), first);
        let record = f
            .store
            .record(&EnvId::default_env(), &done.request_id)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(record.version.as_str(), first);
    }
    let latest = f
        .invoke_version("f", Qualifier::parse("$LATEST"), "{}")
        .await
        .expect("invoked");
    assert_eq!(latest.version.as_str(), second);
}

#[tokio::test]
async fn a_version_the_function_never_had_is_not_found() {
    let f = fixture(open(), 8);
    f.deploy("f", "exports.main = async () => 'f'").await;
    let other = f.deploy("g", "exports.main = async () => 'g'").await;
    for qualifier in [other.as_str(), "0123456789ab", "not a version"] {
        let error = f
            .invoke_version("f", Qualifier::parse(qualifier), "{}")
            .await
            .expect_err("refused");
        assert_eq!(error.code, ErrorCode::FunctionNotFound, "{qualifier}");
        assert!(
            error.message.contains("has no version"),
            "{}",
            error.message
        );
    }
}

/// An engine whose streamed responses the test drives: it sends the body's
/// chunks and sets the logs the end reports.
#[derive(Default)]
struct StreamingEngine {
    bodies: parking_lot::Mutex<Vec<(mpsc::Sender<Bytes>, EndLogs)>>,
}

/// The logs a test body reports at its end, set by the test.
type EndLogs = Arc<parking_lot::Mutex<Vec<LogLine>>>;

/// A body of the chunks the test sends, ending when it stops sending.
struct Channel {
    chunks: mpsc::Receiver<Bytes>,
    end_logs: EndLogs,
}

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = cloudlet_runtime::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}

impl cloudlet_runtime::ResponseBody for Channel {
    fn end(&mut self, how: cloudlet_runtime::BodyEnd) -> StreamEnd {
        StreamEnd {
            result: match how {
                cloudlet_runtime::BodyEnd::ClientGone => Err(cloudlet_core::FunctionError::new(
                    ErrorCode::FunctionInvocationFailed,
                    "the client went away",
                )),
                _ => Ok(()),
            },
            logs: std::mem::take(&mut *self.end_logs.lock()),
            logs_truncated: false,
        }
    }
}

#[async_trait::async_trait]
impl Engine for StreamingEngine {
    fn name(&self) -> &'static str {
        "streaming"
    }

    async fn invoke(
        &self,
        _function: &Arc<DeployedFunction>,
        _request: InvocationRequest,
    ) -> Result<InvocationOutcome, EngineError> {
        let (sender, chunks) = mpsc::channel(4);
        let end_logs = Arc::default();
        self.bodies.lock().push((sender, Arc::clone(&end_logs)));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("text/event-stream"),
        );
        Ok(InvocationOutcome {
            result: Ok(Output::Stream(ResponseStream {
                status: http::StatusCode::OK,
                headers,
                body: Box::new(Channel { chunks, end_logs }),
            })),
            logs: vec![line(LogLevel::Info, "before the head")],
            logs_truncated: false,
            cold: true,
            init: None,
        })
    }

    fn retire(&self, _: &EnvId, _: &FunctionName, _: Option<&VersionId>) {}
    async fn background(&self) {
        std::future::pending().await
    }
    fn usage(&self) -> EngineUsage {
        EngineUsage::default()
    }
    fn end_running(&self) {}
}

fn line(level: LogLevel, message: &str) -> LogLine {
    LogLine {
        timestamp: cloudlet_core::now_unix_ms(),
        level,
        message: message.to_owned(),
    }
}

async fn streamed(
    f: &Fixture,
    engine: &StreamingEngine,
) -> (Invocation, ResponseStream, mpsc::Sender<Bytes>, EndLogs) {
    f.deploy("sse", "exports.main = async () => 1").await;
    let mut done = f.invoke("sse", "{}").await.expect("invoked");
    let Ok(Output::Stream(stream)) =
        std::mem::replace(&mut done.result, Ok(Output::Json(String::new())))
    else {
        panic!("a stream");
    };
    let (sender, end_logs) = engine.bodies.lock().pop().expect("the engine was called");
    (done, stream, sender, end_logs)
}

#[tokio::test]
async fn a_streamed_response_is_recorded_with_its_status_and_size_when_it_ends() {
    use http_body_util::BodyExt;
    let engine = Arc::new(StreamingEngine::default());
    let f = fixture_with(open(), 8, Engines::js_only(engine.clone()));
    let (done, mut stream, sender, end_logs) = streamed(&f, &engine).await;
    sender
        .send(Bytes::from_static(b"data: 1\n\n"))
        .await
        .expect("sent");
    let frame = stream.body.frame().await.expect("a frame").expect("data");
    assert_eq!(frame.into_data().expect("data"), "data: 1\n\n");
    f.store.flush().await.expect("flushed");
    let env = EnvId::default_env();
    let read = || f.store.record(&env, &done.request_id);
    assert!(
        read().await.expect("read").is_none(),
        "no record mid-stream"
    );
    assert_eq!(f.invoker.running(), (1, 8), "it runs until the stream ends");

    end_logs
        .lock()
        .push(line(LogLevel::Warn, "after the last chunk"));
    drop(sender);
    assert!(stream.body.frame().await.is_none());
    f.store.flush().await.expect("flushed");
    let record = read().await.expect("read").expect("recorded at the end");
    assert_eq!(record.status, InvocationStatus::Succeeded);
    assert_eq!(record.result, None);
    assert_eq!(
        record.http,
        Some(cloudlet_core::HttpResponseSummary {
            status: 200,
            bytes: 9
        })
    );
    let logs: Vec<&str> = record.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logs, ["before the head", "after the last chunk"]);
    assert_eq!(f.invoker.running(), (0, 8));
}

#[tokio::test]
async fn a_stream_its_client_dropped_is_recorded_as_the_engine_ends_it() {
    let engine = Arc::new(StreamingEngine::default());
    let f = fixture_with(open(), 8, Engines::js_only(engine.clone()));
    let (done, stream, _sender, _) = streamed(&f, &engine).await;
    drop(stream);
    f.store.flush().await.expect("flushed");
    let record = f
        .store
        .record(&EnvId::default_env(), &done.request_id)
        .await
        .expect("read")
        .expect("recorded when dropped");
    assert_eq!(record.status, InvocationStatus::Failed);
    assert_eq!(
        record.http,
        Some(cloudlet_core::HttpResponseSummary {
            status: 200,
            bytes: 0
        })
    );
    assert_eq!(f.invoker.running(), (0, 8));
}
