//! What an instance's processes print, as the logs of the requests it served.
//!
//! A line printed while exactly one request is in flight on the instance is
//! that request's. Other lines (printed at start-up with no request, between
//! requests, or while several are in flight, which the output alone cannot
//! tell apart) wait in the instance's backlog and go to the next request that
//! ends on it. Every buffer is capped as the other engines cap an
//! invocation's logs, so a process that floods its output costs bounded
//! memory, and the readers keep draining its pipes so it never blocks.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use bytes::BytesMut;
use cloudlet_core::{now_unix_ms, LogLevel, LogLine, RequestId};
use parking_lot::Mutex;
use tokio::io::unix::AsyncFd;

/// The longest line kept whole; longer ones are split.
const MAX_LINE: usize = 16 * 1024;
/// Lines kept to explain an instance that failed (`FUNCTION_STATUS_ABNORMAL`).
const TAIL_LINES: usize = 20;
/// Characters of each such line.
const TAIL_LINE_CHARS: usize = 500;
/// Bytes read from a pipe at a time: Linux's default pipe buffer, all a
/// process can have written and not yet been read.
const PIPE_BUFFER: usize = 64 * 1024;

pub(super) struct Output {
    captured: Mutex<Captured>,
    /// The processes' stdout and stderr, read under this lock.
    pipes: Mutex<Vec<Pipe>>,
}

/// Where a read of a pipe left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipeState {
    /// Nothing more to read now.
    Empty,
    /// The read stopped at its budget; there may be more.
    MoreToRead,
    /// The pipe's writers are gone.
    Closed,
}

/// One of an instance's pipes, and the start of a line not yet ended.
struct Pipe {
    file: Arc<File>,
    level: LogLevel,
    partial: BytesMut,
    open: bool,
}

struct Captured {
    /// Bytes of log text one buffer may hold.
    cap: usize,
    in_flight: Vec<(RequestId, Lines)>,
    backlog: Lines,
    tail: VecDeque<String>,
}

#[derive(Default)]
struct Lines {
    lines: Vec<LogLine>,
    bytes: usize,
    truncated: bool,
}

impl Lines {
    fn push(&mut self, line: LogLine, cap: usize) {
        if self.bytes + line.message.len() > cap {
            self.truncated = true;
            return;
        }
        self.bytes += line.message.len();
        self.lines.push(line);
    }

    fn append(&mut self, other: Lines, cap: usize) {
        self.truncated |= other.truncated;
        for line in other.lines {
            self.push(line, cap);
        }
    }
}

impl Output {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            captured: Mutex::new(Captured {
                cap,
                in_flight: Vec::new(),
                backlog: Lines::default(),
                tail: VecDeque::with_capacity(TAIL_LINES),
            }),
            pipes: Mutex::new(Vec::new()),
        }
    }

    /// Reads what the pipes hold now (up to a pipe buffer's worth each):
    /// what was printed before this moment is attributed before a request ends.
    pub(super) fn drain(&self) {
        let mut pipes = self.pipes.lock();
        for pipe in pipes.iter_mut() {
            self.read_available(pipe, PIPE_BUFFER);
        }
    }

    /// Reads `pipe` until it would block, ends, or `budget` bytes were read:
    /// a process that writes as fast as it is read must not hold the lock
    /// (and the thread) for good.
    fn read_available(&self, pipe: &mut Pipe, budget: usize) -> PipeState {
        let mut left = budget;
        while pipe.open {
            if left == 0 {
                return PipeState::MoreToRead;
            }
            if pipe.partial.capacity() - pipe.partial.len() < 1024 {
                pipe.partial.reserve(8 * 1024);
            }
            let start = pipe.partial.len();
            let room = (pipe.partial.capacity() - start).min(left);
            pipe.partial.resize(start + room, 0);
            let read = (&*pipe.file).read(&mut pipe.partial[start..]);
            let got = match read {
                Ok(0) => {
                    pipe.partial.truncate(start);
                    pipe.open = false;
                    if !pipe.partial.is_empty() {
                        let rest = pipe.partial.split();
                        self.line(pipe.level, text(&rest));
                    }
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    pipe.partial.truncate(start);
                    return PipeState::Empty;
                }
                Err(_) => {
                    pipe.partial.truncate(start);
                    pipe.open = false;
                    break;
                }
            };
            left -= got;
            pipe.partial.truncate(start + got);
            while let Some(end) = line_end(&pipe.partial) {
                let line = pipe.partial.split_to(end.taken);
                self.line(pipe.level, text(&line[..end.length]));
            }
        }
        PipeState::Closed
    }

    /// A request is in flight on the instance from now.
    pub(super) fn begin(&self, request: &RequestId) {
        let mut captured = self.captured.lock();
        captured.in_flight.push((request.clone(), Lines::default()));
    }

    /// The lines of a request that ended, with the backlog; whether some were dropped.
    pub(super) fn end(&self, request: &RequestId) -> (Vec<LogLine>, bool) {
        let mut captured = self.captured.lock();
        let cap = captured.cap;
        let mut lines = match captured.in_flight.iter().position(|(id, _)| id == request) {
            Some(at) => captured.in_flight.swap_remove(at).1,
            None => Lines::default(),
        };
        let backlog = std::mem::take(&mut captured.backlog);
        lines.append(backlog, cap);
        lines.lines.sort_by_key(|line| line.timestamp);
        (lines.lines, lines.truncated)
    }

    fn line(&self, level: LogLevel, message: String) {
        let mut captured = self.captured.lock();
        if captured.tail.len() == TAIL_LINES {
            captured.tail.pop_front();
        }
        captured
            .tail
            .push_back(message.chars().take(TAIL_LINE_CHARS).collect());
        let line = LogLine {
            timestamp: now_unix_ms(),
            level,
            message,
        };
        let cap = captured.cap;
        match captured.in_flight.as_mut_slice() {
            [(_, only)] => only.push(line, cap),
            _ => captured.backlog.push(line, cap),
        }
    }

    /// The last lines printed, to explain why the instance failed.
    pub(super) fn tail(&self) -> String {
        let captured = self.captured.lock();
        let lines: Vec<&str> = captured.tail.iter().map(String::as_str).collect();
        lines.join("\n")
    }
}

/// Reads one of the instance's pipes to its end, line by line, into
/// `output`, whenever it has something to read.
pub(super) async fn capture(pipe: OwnedFd, level: LogLevel, output: Arc<Output>) {
    if set_nonblocking(&pipe).is_err() {
        return;
    }
    let file = Arc::new(File::from(pipe));
    // SAFETY: the AsyncFd holds its own `Arc` of the file, so the
    // descriptor stays open and the same for as long as it lives.
    #[allow(unsafe_code)]
    let Ok(readable) = (unsafe { AsyncFd::register(Arc::clone(&file)) }) else {
        return;
    };
    let index = {
        let mut pipes = output.pipes.lock();
        pipes.push(Pipe {
            file,
            level,
            partial: BytesMut::with_capacity(8 * 1024),
            open: true,
        });
        pipes.len() - 1
    };
    loop {
        let Ok(mut ready) = readable.readable().await else {
            return;
        };
        let state = {
            let mut pipes = output.pipes.lock();
            let pipe = &mut pipes[index];
            output.read_available(pipe, PIPE_BUFFER)
        };
        match state {
            PipeState::Closed => return,
            PipeState::Empty => ready.clear_ready(),
            // A flood: read on after letting the worker's other tasks run.
            PipeState::MoreToRead => {
                drop(ready);
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Pipes are read without blocking, by the reader task and by a request
/// that ends.
fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor this function's caller owns; it
    // changes its flags and touches no memory of ours.
    #[allow(unsafe_code)]
    let result = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
        }
    };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

struct LineEnd {
    /// Bytes of the line's text, without its newline.
    length: usize,
    /// Bytes to take off the buffer.
    taken: usize,
}

/// Where the first line in `buffer` ends: at a newline, or at [`MAX_LINE`].
fn line_end(buffer: &[u8]) -> Option<LineEnd> {
    match buffer.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(newline) => Some(LineEnd {
            length: newline,
            taken: newline + 1,
        }),
        None if buffer.len() >= MAX_LINE => Some(LineEnd {
            length: MAX_LINE,
            taken: MAX_LINE,
        }),
        None => None,
    }
}

fn text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> RequestId {
        RequestId::parse(format!("request-{n}")).unwrap()
    }

    fn messages(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    /// `bytes` written to a pipe and closed, read as an instance's stdout.
    async fn captured(output: &Arc<Output>, bytes: &[u8]) {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut writer = writer;
        std::io::Write::write_all(&mut writer, bytes).unwrap();
        drop(writer);
        capture(OwnedFd::from(reader), LogLevel::Info, Arc::clone(output)).await;
    }

    #[tokio::test]
    async fn a_line_printed_during_the_only_request_in_flight_is_its_own() {
        let output = Arc::new(Output::new(1024));
        output.begin(&id(1));
        captured(&output, b"one\ntwo\r\n").await;
        let (lines, truncated) = output.end(&id(1));
        assert_eq!(messages(&lines), ["one", "two"]);
        assert!(!truncated);
    }

    #[test]
    fn lines_printed_while_several_requests_run_go_to_the_next_that_ends() {
        let output = Output::new(1024);
        output.begin(&id(1));
        output.begin(&id(2));
        output.line(LogLevel::Info, "shared".into());
        assert_eq!(messages(&output.end(&id(2)).0), ["shared"]);
        assert!(output.end(&id(1)).0.is_empty());
    }

    #[tokio::test]
    async fn what_a_pipe_holds_is_read_when_a_request_ends() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let output = Arc::new(Output::new(1024));
        let reading = tokio::spawn(capture(
            OwnedFd::from(reader),
            LogLevel::Info,
            Arc::clone(&output),
        ));
        tokio::task::yield_now().await;
        output.begin(&id(1));
        std::io::Write::write_all(&mut writer, b"just before the answer\n").unwrap();
        output.drain();
        assert_eq!(messages(&output.end(&id(1)).0), ["just before the answer"]);
        drop(writer);
        reading.await.unwrap();
    }

    #[test]
    fn a_flood_is_capped_and_marked() {
        let output = Output::new(10);
        output.begin(&id(1));
        for _ in 0..100 {
            output.line(LogLevel::Info, "12345".into());
        }
        let (lines, truncated) = output.end(&id(1));
        assert_eq!(lines.len(), 2);
        assert!(truncated);
    }

    #[tokio::test]
    async fn an_overlong_line_is_split() {
        let output = Arc::new(Output::new(1 << 20));
        output.begin(&id(1));
        let long = vec![b'x'; MAX_LINE + 5];
        captured(&output, &long).await;
        let lengths: Vec<usize> = output
            .end(&id(1))
            .0
            .iter()
            .map(|l| l.message.len())
            .collect();
        assert_eq!(lengths, [MAX_LINE, 5]);
    }
}
