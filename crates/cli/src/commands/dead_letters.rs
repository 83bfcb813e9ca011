//! `cloudlet dead-letters list|redrive|purge`: an env's asynchronous
//! invocations that will not run again.

use cloudlet_core::{EnvId, RequestId};

use super::Global;

#[derive(clap::Subcommand, Debug)]
pub enum DeadLettersCommand {
    /// List the env's dead letters, oldest first: request ID, function,
    /// attempts and why.
    #[command(visible_alias = "ls")]
    List {
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Print them as JSON, with their events.
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead letter again, to run now with its attempts counted afresh.
    Redrive {
        request_id: RequestId,
        #[arg(long, default_value = "default")]
        env: EnvId,
    },
    /// Remove the env's dead letters.
    Purge {
        #[arg(long, default_value = "default")]
        env: EnvId,
    },
}

pub async fn run(global: &Global, command: DeadLettersCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        DeadLettersCommand::List { env, json } => {
            let dead = client.dead_letters(&env).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&dead)?);
                return Ok(());
            }
            for letter in &dead {
                let text = |key: &str| letter[key].as_str().unwrap_or_default().to_owned();
                println!(
                    "{}  {}  {} attempts  {}",
                    text("requestId"),
                    text("function"),
                    letter["attempts"],
                    text("reason")
                );
            }
            if dead.is_empty() {
                eprintln!("no dead letters in env {env}");
            }
        }
        DeadLettersCommand::Redrive { request_id, env } => {
            client.redrive(&env, &request_id).await?;
            println!("queued {request_id} again");
        }
        DeadLettersCommand::Purge { env } => {
            let purged = client.purge_dead_letters(&env).await?;
            println!("purged {purged} dead letters from env {env}");
        }
    }
    Ok(())
}
