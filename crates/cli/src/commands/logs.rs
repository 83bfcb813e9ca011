//! `cloudlet logs REQUEST_ID`: the record of one invocation and its console output.

use std::fmt::Write as _;

use cloudlet_core::{EnvId, InvocationRecord, RequestId};

use super::{format_time, format_us, Global};

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The request ID that `cloudlet invoke` printed (or the `X-Request-Id` header).
    pub request_id: RequestId,

    /// The env the invocation ran in.
    #[arg(long, default_value = "default")]
    pub env: EnvId,

    /// Print the raw record as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &Global, args: LogsArgs) -> anyhow::Result<()> {
    let record = global.client()?.record(&args.env, &args.request_id).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record));
    }
    Ok(())
}

/// The human-readable form: a summary, then one line per log entry.
pub fn render(record: &InvocationRecord) -> String {
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
    if let Some(result) = &record.result {
        field("result", result);
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
            let _ = writeln!(
                out,
                "{} {:<5} {}",
                format_time(line.timestamp),
                line.level.as_str(),
                line.message
            );
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
    fn renders_a_failed_record() {
        let record: InvocationRecord = serde_json::from_value(serde_json::json!({
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
