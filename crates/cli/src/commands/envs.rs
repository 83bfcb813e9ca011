//! `cloudlet envs list|key`.

use cloudlet_core::EnvId;

use super::{format_time, Global};

#[derive(clap::Subcommand, Debug)]
pub enum EnvsCommand {
    /// List the envs, with how many functions each has.
    #[command(visible_alias = "ls")]
    List {
        /// Print the envs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new invoke key for an env (creating the env if needed) and print it.
    /// The env's previous key stops working.
    Key {
        /// The env the key is for.
        env: EnvId,
    },
}

pub async fn run(global: &Global, command: EnvsCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        EnvsCommand::List { json } => {
            let envs = client.envs().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&envs)?);
            } else if envs.is_empty() {
                eprintln!("no envs yet: `cloudlet deploy` creates one");
            } else {
                let width = envs.iter().map(|e| e.env.len()).max().unwrap_or(0).max(3);
                println!("{:<width$}  {:>9}  CREATED", "ENV", "FUNCTIONS");
                for env in envs {
                    println!(
                        "{:<width$}  {:>9}  {}",
                        env.env,
                        env.function_count,
                        format_time(env.created_at)
                    );
                }
            }
        }
        EnvsCommand::Key { env } => {
            let key = client.issue_key(&env).await?;
            println!("{key}");
            eprintln!("invoke key for env {env}: pass it as --key or CLOUDLET_KEY");
        }
    }
    Ok(())
}
