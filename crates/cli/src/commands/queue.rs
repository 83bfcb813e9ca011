//! `cloudlet queue`: where an env's asynchronous invocations stand, per
//! function.

use cloudlet_core::EnvId;
use serde_json::Value;

use super::{format_us, Global};

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    #[arg(long, default_value = "default")]
    pub env: EnvId,
    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &Global, args: QueueArgs) -> anyhow::Result<()> {
    let stats = global.client()?.queue_stats(&args.env).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", table(&stats));
    }
    Ok(())
}

/// One line per function, then the env's depth against its limit.
fn table(stats: &Value) -> String {
    let mut out = format!(
        "{:<24}  {:>8}  {:>8}  {:>8}  {:>8}  OLDEST\n",
        "FUNCTION", "QUEUED", "RUNNING", "RETRYING", "DEAD"
    );
    for function in stats["functions"].as_array().into_iter().flatten() {
        let count = |key: &str| function[key].as_u64().unwrap_or(0);
        let oldest = function["oldestAgeMs"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |ms| format_us(ms * 1000));
        out.push_str(&format!(
            "{:<24}  {:>8}  {:>8}  {:>8}  {:>8}  {oldest}\n",
            function["function"].as_str().unwrap_or_default(),
            count("queued"),
            count("running"),
            count("retrying"),
            count("deadLetters"),
        ));
    }
    out.push_str(&format!(
        "env {}: {} of at most {} queued\n",
        stats["env"].as_str().unwrap_or_default(),
        stats["depth"],
        stats["maxQueued"]
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn each_function_is_a_line_and_the_env_its_total() {
        let stats = serde_json::json!({
            "env": "default", "depth": 3, "maxQueued": 100000,
            "functions": [{"function": "add", "queued": 2, "running": 1, "retrying": 0,
                           "deadLetters": 4, "oldestAgeMs": 1500}]
        });
        let text = table(&stats);
        assert!(text.contains("add"), "{text}");
        assert!(
            text.contains("       2         1         0         4  1.500 s"),
            "{text}"
        );
        assert!(
            text.ends_with("env default: 3 of at most 100000 queued\n"),
            "{text}"
        );
    }
}
