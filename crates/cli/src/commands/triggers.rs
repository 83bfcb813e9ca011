//! `cloudlet triggers list`: an env's triggers, each with its next firing.

use cloudlet_core::EnvId;
use serde_json::Value;

use super::{format_time, Global};

#[derive(clap::Subcommand, Debug)]
pub enum TriggersCommand {
    /// List the env's triggers: function, name, type, schedule, next firing.
    #[command(visible_alias = "ls")]
    List {
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(global: &Global, command: TriggersCommand) -> anyhow::Result<()> {
    let TriggersCommand::List { env, json } = command;
    let listed = global.client()?.triggers(&env).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        print!("{}", table(&listed));
    }
    Ok(())
}

fn table(listed: &Value) -> String {
    let mut out = format!(
        "{:<20}  {:<20}  {:<6}  {:<24}  NEXT\n",
        "FUNCTION", "TRIGGER", "TYPE", "CONFIG"
    );
    for trigger in listed["triggers"].as_array().into_iter().flatten() {
        let text = |key: &str| trigger[key].as_str().unwrap_or_default().to_owned();
        let next = trigger["nextFiring"]
            .as_i64()
            .map_or_else(|| "-".to_owned(), format_time);
        out.push_str(&format!(
            "{:<20}  {:<20}  {:<6}  {:<24}  {next}\n",
            text("function"),
            text("name"),
            text("type"),
            text("config"),
        ));
    }
    out
}
