//! One Node.js worker process: started generic, specialised for one function
//! version by `load`, then running one invocation at a time.
//!
//! Messages go over a Unix socket of its own (`protocol.rs`); a reader task
//! turns the worker's messages into a channel, so that waiting for the next
//! one can be raced against the deadline and the memory checks without losing
//! half a message. What the process writes to its own stdout and stderr
//! (native code, Node's fatal errors) is read line by line: lines during an
//! invocation are its logs, and the last lines explain a crash.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::{LogLevel, LogLine};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::codec::{FramedRead, LinesCodec};

use super::protocol::{self, FromWorker};
use super::sdk_env::SdkValues;

/// How long a new worker has to connect back.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The last lines of a worker's own output kept to explain its end.
const TAIL_LINES: usize = 20;

/// The longest line of a worker's own output kept whole.
const MAX_OUTPUT_LINE: usize = 16 * 1024;

/// How a worker is started.
pub(super) struct Spawn<'a> {
    pub(super) node: &'a Path,
    pub(super) script: &'a Path,
    /// The platform's modules, searched after the function's own.
    pub(super) platform_modules: &'a Path,
    /// Where its socket is made.
    pub(super) sockets: &'a Path,
    /// Where its private temp dir (`TMPDIR`, `HOME`) is made.
    pub(super) temp: &'a Path,
    /// V8's heap limit, from the function's `memorySize`.
    pub(super) heap_mb: u32,
}

pub(super) struct Worker {
    child: Child,
    /// Declared after `child`, so the process is killed before its files go.
    _temp: PrivateTemp,
    writer: OwnedWriteHalf,
    messages: mpsc::Receiver<FromWorker>,
    output: Arc<Mutex<Output>>,
    pub(super) pid: u32,
    pub(super) heap_mb: u32,
    pub(super) last_used: Instant,
    /// Its share of its function's instance limit, once specialised.
    pub(super) slot: Option<OwnedSemaphorePermit>,
    /// The per-invocation SDK variables it was last sent (`sdk_env.rs`):
    /// an invocation sends only those that changed.
    pub(super) sdk_env: SdkValues,
}

/// A worker's own temp dir, removed with the worker (as Lambda's `/tmp`
/// lives as long as its execution environment).
struct PrivateTemp(PathBuf);

impl PrivateTemp {
    fn make(path: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.0);
        // A function may have left many files: removed off the async workers.
        let remove = move || {
            let _ = std::fs::remove_dir_all(&path);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// What the process wrote to its own stdout and stderr.
#[derive(Default)]
struct Output {
    tail: VecDeque<String>,
    /// Lines since the invocation in progress started.
    pending: Vec<LogLine>,
}

impl Output {
    fn push(&mut self, level: LogLevel, line: String) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        self.pending.push(LogLine {
            timestamp: cloudlet_core::now_unix_ms(),
            level,
            message: line,
        });
    }
}

impl Worker {
    pub(super) async fn spawn(how: Spawn<'_>) -> std::io::Result<Worker> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let socket = how.sockets.join(format!("w{n}.sock"));
        let temp = PrivateTemp::make(how.temp.join(format!("w{n}")))?;
        let listener = UnixListener::bind(&socket)?;
        let spawned = Command::new(how.node)
            .arg(format!("--max-old-space-size={}", how.heap_mb))
            .arg(how.script)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TMPDIR", &temp.0)
            .env("HOME", &temp.0)
            .env("NODE_PATH", how.platform_modules)
            .env("CLOUDLET_WORKER_SOCKET", &socket)
            .current_dir(&temp.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let accepted = match spawned {
            Ok(child) => tokio::time::timeout(START_TIMEOUT, listener.accept())
                .await
                .map(|accepted| (child, accepted)),
            Err(error) => {
                let _ = std::fs::remove_file(&socket);
                return Err(error);
            }
        };
        let _ = std::fs::remove_file(&socket);
        let (mut child, accepted) = accepted.map_err(|_| {
            std::io::Error::other("the Node.js worker did not connect back in time")
        })?;
        let (stream, _) = accepted?;
        let (reader, writer) = stream.into_split();
        let output = Arc::new(Mutex::new(Output::default()));
        read_output(child.stdout.take(), LogLevel::Info, &output);
        read_output(child.stderr.take(), LogLevel::Error, &output);
        let mut messages = read_messages(reader);
        let pid = match messages.recv().await {
            Some(FromWorker::Ready { pid }) => pid,
            _ => {
                return Err(std::io::Error::other(
                    "the Node.js worker did not say it was ready",
                ))
            }
        };
        Ok(Worker {
            child,
            _temp: temp,
            writer,
            messages,
            output,
            pid,
            heap_mb: how.heap_mb,
            last_used: Instant::now(),
            slot: None,
            sdk_env: SdkValues::default(),
        })
    }

    pub(super) async fn send(&mut self, body: &[u8]) -> std::io::Result<()> {
        protocol::write_message(&mut self.writer, body).await
    }

    /// The worker's next message; `None` once it has gone (exited, killed).
    pub(super) async fn next_message(&mut self) -> Option<FromWorker> {
        self.messages.recv().await
    }

    /// The lines the process wrote itself since the last call.
    pub(super) fn take_output(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.output.lock().pending)
    }

    /// The last lines the process wrote itself, to explain its end.
    pub(super) fn last_output(&self) -> String {
        let output = self.output.lock();
        output.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Its resident memory, from `/proc` (`None` where there is none).
    pub(super) fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Ends the process at once.
    pub(super) fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// How the process ended, once it has: its exit code or signal.
    pub(super) async fn exit_status(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => describe_exit(status),
            _ => {
                self.kill();
                "it stopped answering".to_owned()
            }
        }
    }
}

#[cfg(unix)]
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("it exited with code {code}"),
        (None, Some(signal)) => format!("it was killed by signal {signal}"),
        _ => "it ended".to_owned(),
    }
}

/// Turns the worker's messages into a channel (see the module docs).
fn read_messages(mut reader: tokio::net::unix::OwnedReadHalf) -> mpsc::Receiver<FromWorker> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok(message) = protocol::read_message(&mut reader).await {
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    receiver
}

/// Reads one of the process's own output streams line by line, for as long
/// as it is open.
fn read_output(
    stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
    level: LogLevel,
    output: &Arc<Mutex<Output>>,
) {
    let Some(stream) = stream else {
        return;
    };
    let output = Arc::clone(output);
    tokio::spawn(async move {
        let mut lines = FramedRead::new(stream, LinesCodec::new_with_max_length(MAX_OUTPUT_LINE));
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) => output.lock().push(level, line),
                // A line past the length limit is skipped; the stream goes on.
                Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => continue,
                Err(_) => break,
            }
        }
    });
}
