//! `cloudlet invocations list|cancel`: an env's invocations, newest first,
//! and cancelling an asynchronous one that waits to run.

use cloudlet_core::{EnvId, FunctionName, InvocationStatus, InvocationSummary, RequestId};

use super::{format_time, format_us, Global};

#[derive(clap::Subcommand, Debug)]
pub enum InvocationsCommand {
    /// List an env's invocations, newest first.
    #[command(visible_alias = "ls")]
    List {
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Only this function's.
        #[arg(long)]
        function: Option<FunctionName>,
        /// Only those with this status (enqueued, running, succeeded,
        /// failed, retrying, expired, cancelled).
        #[arg(long, value_parser = parse_status)]
        status: Option<InvocationStatus>,
        /// Only those this trigger started (http, cli, call, destination, …).
        #[arg(long)]
        trigger: Option<String>,
        /// How many (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel an asynchronous invocation that waits to run.
    Cancel {
        request_id: RequestId,
        #[arg(long, default_value = "default")]
        env: EnvId,
    },
}

fn parse_status(status: &str) -> Result<InvocationStatus, String> {
    InvocationStatus::parse(status).ok_or_else(|| {
        let known: Vec<&str> = InvocationStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("one of {}", known.join(", "))
    })
}

pub async fn run(global: &Global, command: InvocationsCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        InvocationsCommand::List {
            env,
            function,
            status,
            trigger,
            limit,
            json,
        } => {
            let limit = limit.to_string();
            let mut filters = vec![("limit", limit.as_str())];
            if let Some(function) = &function {
                filters.push(("function", function.as_str()));
            }
            if let Some(status) = status {
                filters.push(("status", status.as_str()));
            }
            if let Some(trigger) = &trigger {
                filters.push(("trigger", trigger.as_str()));
            }
            let (listed, _) = client.invocations(&env, &filters).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else if listed.is_empty() {
                eprintln!("no invocations in env {env} match");
            } else {
                for invocation in &listed {
                    println!("{}", line(invocation));
                }
            }
        }
        InvocationsCommand::Cancel { request_id, env } => {
            client.cancel(&env, &request_id).await?;
            println!("cancelled {request_id}");
        }
    }
    Ok(())
}

/// `started  request-id  function  status  duration  trigger  [code]`.
pub fn line(invocation: &InvocationSummary) -> String {
    let mut line = format!(
        "{}  {}  {}  {}  {}  {}",
        format_time(invocation.started_at),
        invocation.request_id,
        invocation.function,
        invocation.status.as_str(),
        format_us(invocation.duration_us),
        invocation.trigger,
    );
    if let Some(code) = invocation.error_code {
        line.push_str("  ");
        line.push_str(code.as_str());
    }
    line
}
