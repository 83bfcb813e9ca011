//! `cloudlet status`: what the server holds.

use super::{format_time, Global};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: StatusArgs) -> anyhow::Result<()> {
    let status = global.client()?.status().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let records = &status["records"];
    let limit = records["maxBytes"]
        .as_u64()
        .map_or("no limit".to_owned(), |max| format!("of {}", mib(max)));
    println!(
        "records      {} kept, {} on disk ({limit}), {} waiting to be written, {} dropped",
        records["count"],
        mib(records["bytes"].as_u64().unwrap_or(0)),
        records["pending"],
        records["dropped"]
    );
    if let Some(oldest) = records["oldestStartedAt"].as_i64() {
        println!("             oldest from {}", format_time(oldest));
    }
    let instances = &status["instances"];
    println!(
        "instances    {} alive, holding {} of a {} budget",
        instances["count"],
        mib(instances["memoryHeldBytes"].as_u64().unwrap_or(0)),
        mib(instances["memoryBudgetBytes"].as_u64().unwrap_or(0))
    );
    let invocations = &status["invocations"];
    println!(
        "invocations  {} running (at most {})",
        invocations["running"], invocations["max"]
    );
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
