//! `cloudlet logs REQUEST_ID`: the record of one invocation, its console
//! output and the calls it made; `--tree` draws its whole chain of calls.
//! `cloudlet logs --function NAME [--follow]`: a function's latest
//! invocations with their output, and each next one as it finishes.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use cloudlet_core::{
    Attempt, EnvId, FunctionName, InvocationRef, InvocationSummary, LogLine, RecordWithChildren,
    RequestId,
};

use super::invocations::line;
use super::{format_time, format_us, Global};

/// The most invocations `--tree` draws: a runaway chain is cut off there.
const TREE_LIMIT: usize = 1000;
/// How many of a function's latest invocations `--function` shows first.
const LATEST: usize = 10;
/// How often `--follow` asks for new ones, and how many it looks at each time.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
const FOLLOW_PAGE: usize = 200;
/// Request IDs `--follow` remembers having shown, so that memory stays
/// bounded however long it runs.
const FOLLOW_REMEMBERS: usize = 10_000;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The request ID that `cloudlet invoke` printed (or the `X-Request-Id` header).
    #[arg(required_unless_present = "function", conflicts_with = "function")]
    pub request_id: Option<RequestId>,

    /// Show this function's latest invocations, each with its output.
    #[arg(long)]
    pub function: Option<FunctionName>,

    /// With --function: keep going, showing each invocation as it finishes.
    #[arg(long, requires = "function")]
    pub follow: bool,

    /// The env the invocation ran in.
    #[arg(long, default_value = "default")]
    pub env: EnvId,

    /// Print the raw record as JSON.
    #[arg(long)]
    pub json: bool,

    /// Draw the whole chain of calls the invocation is part of, from its
    /// root: each call's function, request ID, status and duration.
    #[arg(long, conflicts_with = "json")]
    pub tree: bool,
}

pub async fn run(global: &Global, args: LogsArgs) -> anyhow::Result<()> {
    let client = global.client()?;
    let Some(request_id) = &args.request_id else {
        let function = args
            .function
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("name a request ID or a --function"))?;
        return tail(&client, &args.env, function, args.follow).await;
    };
    let found = client.record(&args.env, request_id).await?;
    if args.tree {
        let root = match &found.record.root {
            Some(root) => client.record(&root.env, &root.request_id).await?,
            None => found,
        };
        print!("{}", draw_tree(&client, root).await);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", render(&found));
    }
    Ok(())
}

/// A function's latest finished invocations, oldest first, each with its
/// output; with `follow`, then each next one as it finishes, until the
/// command is stopped.
async fn tail(
    client: &cloudlet_client::Client,
    env: &EnvId,
    function: &FunctionName,
    follow: bool,
) -> anyhow::Result<()> {
    let mut shown = Shown::default();
    let mut first = true;
    loop {
        let page = if first { LATEST } else { FOLLOW_PAGE }.to_string();
        let filters = [("function", function.as_str()), ("limit", page.as_str())];
        let (listed, _) = client.invocations(env, &filters).await?;
        // Newest first as listed; shown oldest first, as they finished.
        for summary in listed.iter().rev() {
            if !summary.status.is_final() || !shown.insert(&summary.request_id) {
                continue;
            }
            let record = client.record(env, &summary.request_id).await?;
            print!("{}", finished(summary, &record));
        }
        if !follow {
            return Ok(());
        }
        first = false;
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// The request IDs shown so far, the oldest forgotten past [`FOLLOW_REMEMBERS`].
#[derive(Default)]
struct Shown {
    ids: HashSet<RequestId>,
    order: VecDeque<RequestId>,
}

impl Shown {
    /// False when `id` was shown already.
    fn insert(&mut self, id: &RequestId) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        if self.order.len() > FOLLOW_REMEMBERS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }
}

/// One finished invocation: its line, its error, then its output indented.
fn finished(summary: &InvocationSummary, found: &RecordWithChildren) -> String {
    let mut out = format!("{}\n", line(summary));
    if let Some(error) = &found.record.error {
        let _ = writeln!(out, "    error {}: {}", error.code, error.summary());
    }
    for log in &found.record.logs {
        let _ = writeln!(out, "    {}", log_line(log));
    }
    out
}

/// `2026-…Z info  the message`.
fn log_line(line: &LogLine) -> String {
    format!(
        "{} {:<5} {}",
        format_time(line.timestamp),
        line.level.as_str(),
        line.message
    )
}

/// The chain below `root`, one line per call, indented by depth. A call
/// whose record cannot be read (another env's, without its key) is drawn
/// without the calls below it.
async fn draw_tree(client: &cloudlet_client::Client, root: RecordWithChildren) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", tree_line(&root.record.summary()));
    // Depth-first, children in the order they were made.
    let mut stack: Vec<(String, InvocationSummary, bool)> = Vec::new();
    push_children(&mut stack, "", root.children);
    let mut drawn = 1;
    while let Some((prefix, child, last)) = stack.pop() {
        if drawn == TREE_LIMIT {
            let _ = writeln!(out, "… (cut off at {TREE_LIMIT} calls)");
            break;
        }
        drawn += 1;
        let branch = if last { "└─ " } else { "├─ " };
        let _ = writeln!(out, "{prefix}{branch}{}", tree_line(&child));
        let below = format!("{prefix}{}", if last { "   " } else { "│  " });
        match client.record(&child.env, &child.request_id).await {
            Ok(record) => push_children(&mut stack, &below, record.children),
            Err(error) => {
                let _ = writeln!(out, "{below}(its calls cannot be read: {error})");
            }
        }
    }
    out
}

fn push_children(
    stack: &mut Vec<(String, InvocationSummary, bool)>,
    prefix: &str,
    children: Vec<InvocationSummary>,
) {
    let count = children.len();
    for (i, child) in children.into_iter().enumerate().rev() {
        stack.push((prefix.to_owned(), child, i + 1 == count));
    }
}

/// `function  request-id  status  duration`, and the error's code.
fn tree_line(call: &InvocationSummary) -> String {
    let mut line = format!(
        "{} (env {})  {}  {}  {}",
        call.function,
        call.env,
        call.request_id,
        call.status.as_str(),
        format_us(call.duration_us)
    );
    if let Some(code) = call.error_code {
        let _ = write!(line, "  {code}");
    }
    line
}

fn link(link: &InvocationRef) -> String {
    format!("{} (env {})", link.request_id, link.env)
}

/// `#2 failed 2026-…Z 1.2 ms: TypeError: bad`, or `lost` for an attempt
/// whose server stopped under it.
fn attempt_line(attempt: &Attempt) -> String {
    let when = match (attempt.started_at, attempt.duration_us) {
        (Some(at), Some(us)) => format!(" {} {}", format_time(at), format_us(us)),
        _ => String::new(),
    };
    let error = attempt
        .error
        .as_ref()
        .map(|e| format!(": {}", e.summary()))
        .unwrap_or_default();
    format!(
        "#{} {}{when}{error}",
        attempt.number,
        attempt.status.as_str()
    )
}

/// The human-readable form: a summary, the calls it made, then one line
/// per log entry.
pub fn render(found: &RecordWithChildren) -> String {
    let record = &found.record;
    let mut out = String::new();
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<10}{value}");
    };
    field("request", record.request_id.as_str());
    field(
        "function",
        &format!("{} (env {})", record.function, record.env),
    );
    field("version", record.version.short());
    field("status", record.status.as_str());
    field("started", &format_time(record.started_at));
    field("duration", &format_us(record.duration_us));
    let start = match (record.cold, record.init_us) {
        (true, Some(init)) => format!("cold, init {}", format_us(init)),
        (true, None) => "cold".to_owned(),
        (false, _) => "warm".to_owned(),
    };
    field("start", &start);
    field("trigger", &record.trigger);
    if let Some(caller) = &record.caller {
        field("caller", &link(caller));
    }
    if let Some(root) = record
        .root
        .as_ref()
        .filter(|root| Some(*root) != record.caller.as_ref())
    {
        field("root", &link(root));
    }
    for (i, child) in found.children.iter().enumerate() {
        field(if i == 0 { "called" } else { "" }, &tree_line(child));
    }
    if let Some(result) = &record.result {
        field("result", result);
    }
    if let Some(http) = &record.http {
        field(
            "response",
            &format!("{}, {} bytes", http.status, http.bytes),
        );
    }
    for (i, attempt) in record.attempts.iter().enumerate() {
        field(if i == 0 { "attempts" } else { "" }, &attempt_line(attempt));
    }
    if let Some(next) = record.next_attempt_at {
        field("next", &format_time(next));
    }
    if let Some(error) = &record.error {
        field("error", &format!("{}: {}", error.code, error.summary()));
        if let Some(stack) = &error.stack {
            for line in stack.lines() {
                let _ = writeln!(out, "          {line}");
            }
        }
    }
    if record.logs.is_empty() {
        out.push_str("logs      (none)\n");
    } else {
        out.push_str("logs\n");
        for line in &record.logs {
            let _ = writeln!(out, "{}", log_line(line));
        }
    }
    if record.logs_truncated {
        out.push_str("(later output was dropped: the invocation passed the log limit)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_functions_record_shows_its_response() {
        let record: RecordWithChildren = serde_json::from_value(serde_json::json!({
            "requestId": "r-2", "env": "default", "function": "web",
            "version": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "status": "succeeded", "startedAt": 0, "durationUs": 2500, "cold": false,
            "trigger": "http", "http": {"status": 206, "bytes": 1234},
            "logs": [], "logsTruncated": false
        }))
        .unwrap();
        let text = render(&record);
        assert!(text.contains("response  206, 1234 bytes\n"), "{text}");
        assert!(!text.contains("result"), "{text}");
    }

    #[test]
    fn a_retrying_records_attempts_and_next_attempt_are_shown() {
        let record: RecordWithChildren = serde_json::from_value(serde_json::json!({
            "requestId": "r-3", "env": "default", "function": "flaky",
            "version": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "status": "retrying", "startedAt": 0, "durationUs": 0, "cold": false,
            "trigger": "http", "logs": [], "logsTruncated": false, "nextAttemptAt": 2000,
            "attempts": [
                {"number": 1, "status": "failed", "error": {"code": "SYS_ERR", "message": "lost"}},
                {"number": 2, "status": "failed", "startedAt": 1000, "durationUs": 1500,
                 "error": {"code": "FUNCTION_INVOCATION_FAILED", "message": "no"}}
            ]
        }))
        .unwrap();
        let text = render(&record);
        assert!(text.contains("attempts  #1 failed: lost\n"), "{text}");
        assert!(
            text.contains("          #2 failed 1970-01-01T00:00:01.000Z 1.50 ms: no\n"),
            "{text}"
        );
        assert!(
            text.contains("next      1970-01-01T00:00:02.000Z\n"),
            "{text}"
        );
    }

    #[test]
    fn renders_a_failed_record() {
        let record: RecordWithChildren = serde_json::from_value(serde_json::json!({
            "requestId": "r-1", "env": "default", "function": "boom",
            "version": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "status": "failed", "startedAt": 0, "durationUs": 1500, "initUs": 700,
            "cold": true, "trigger": "cli",
            "error": {"code": "FUNCTION_INVOCATION_FAILED", "message": "bad", "stack": "at main (index.js:1)"},
            "logs": [{"timestamp": 0, "level": "warn", "message": "careful"}],
            "logsTruncated": false
        }))
        .unwrap();
        let text = render(&record);
        assert!(text.contains("function  boom (env default)"), "{text}");
        assert!(text.contains("version   9f86d081884c\n"), "{text}");
        assert!(text.contains("start     cold, init 700 µs"), "{text}");
        assert!(
            text.contains("error     FUNCTION_INVOCATION_FAILED: bad"),
            "{text}"
        );
        assert!(text.contains("at main (index.js:1)"), "{text}");
        assert!(
            text.contains("1970-01-01T00:00:00.000Z warn  careful"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    fn summary(function: &str, status: &str, code: Option<&str>) -> InvocationSummary {
        serde_json::from_value(serde_json::json!({
            "env": "default", "requestId": format!("id-{function}"), "function": function,
            "status": status, "startedAt": 0, "durationUs": 2500, "errorCode": code,
        }))
        .unwrap()
    }

    #[test]
    fn a_record_names_its_caller_root_and_calls() {
        let mut found: RecordWithChildren = serde_json::from_value(serde_json::json!({
            "requestId": "r-2", "env": "default", "function": "middle",
            "version": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "status": "succeeded", "startedAt": 0, "durationUs": 1500, "cold": false,
            "trigger": "call", "logs": [], "logsTruncated": false,
            "caller": {"env": "default", "requestId": "r-1"},
            "root": {"env": "edge", "requestId": "r-0"},
        }))
        .unwrap();
        found.children = vec![summary(
            "leaf",
            "failed",
            Some("FUNCTION_TIME_LIMIT_EXCEEDED"),
        )];
        let text = render(&found);
        assert!(text.contains("caller    r-1 (env default)"), "{text}");
        assert!(text.contains("root      r-0 (env edge)"), "{text}");
        assert!(
            text.contains("called    leaf (env default)  id-leaf  failed  2.50 ms  FUNCTION_TIME_LIMIT_EXCEEDED"),
            "{text}"
        );
    }

    #[test]
    fn a_tree_line_names_the_call_its_status_and_duration() {
        let line = tree_line(&summary("add", "succeeded", None));
        assert_eq!(line, "add (env default)  id-add  succeeded  2.50 ms");
    }
}
