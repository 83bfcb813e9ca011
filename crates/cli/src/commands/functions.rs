//! `cloudlet functions list|show|rm|async-config`.

use cloudlet_core::{AsyncConfig, EnvId, FunctionInfo, FunctionName};

use super::{format_bytes, format_time, Global};

#[derive(clap::Subcommand, Debug)]
pub enum FunctionsCommand {
    /// List the functions of an env.
    #[command(visible_alias = "ls")]
    List {
        /// The env to list.
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Print the functions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a function: its current version and configuration.
    Show {
        /// The function to show.
        name: FunctionName,
        /// The env the function lives in.
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Print the function as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a function and all its versions.
    #[command(visible_alias = "remove")]
    Rm {
        /// The function to remove.
        name: FunctionName,
        /// The env the function lives in.
        #[arg(long, default_value = "default")]
        env: EnvId,
    },
    /// Show or set how a function's asynchronous invocations are retried,
    /// how long they may wait, and where their outcomes go. With no
    /// setting given, shows them; settings given replace the function's own
    /// (a setting left out takes its config.json's, then the default).
    AsyncConfig {
        /// The function.
        name: FunctionName,
        /// The env the function lives in.
        #[arg(long, default_value = "default")]
        env: EnvId,
        /// Retries after a function error (0 to 8; 2 by default).
        #[arg(long)]
        max_retries: Option<u32>,
        /// Seconds an invocation may wait to succeed (60 to 21600; 21600 by default).
        #[arg(long)]
        max_event_age_seconds: Option<u32>,
        /// Most of its asynchronous invocations that run at once (1 to 1000).
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// A function of the env that receives each successful outcome.
        #[arg(long)]
        on_success: Option<FunctionName>,
        /// A function of the env that receives each final failure.
        #[arg(long)]
        on_failure: Option<FunctionName>,
        /// Remove the function's own settings: its config.json's apply.
        #[arg(long, conflicts_with_all = ["max_retries", "max_event_age_seconds", "max_concurrency", "on_success", "on_failure"])]
        clear: bool,
    },
}

pub async fn run(global: &Global, command: FunctionsCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        FunctionsCommand::List { env, json } => {
            let functions = client.functions(&env).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&functions)?);
            } else if functions.is_empty() {
                eprintln!("no functions in env {env}");
            } else {
                print!("{}", table(&functions));
            }
        }
        FunctionsCommand::Show { name, env, json } => {
            let info = client.function(&env, &name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", details(&info, client.base_url()));
            }
        }
        FunctionsCommand::Rm { name, env } => {
            client.remove(&env, &name).await?;
            println!("removed {name} from env {env}");
        }
        FunctionsCommand::AsyncConfig {
            name,
            env,
            max_retries,
            max_event_age_seconds,
            max_concurrency,
            on_success,
            on_failure,
            clear,
        } => {
            let config = AsyncConfig {
                max_retries,
                max_event_age_seconds,
                max_concurrency,
                on_success,
                on_failure,
            };
            let shown = if clear {
                client.set_async_config(&env, &name, None).await?
            } else if config == AsyncConfig::default() {
                client.async_config(&env, &name).await?
            } else {
                client.set_async_config(&env, &name, Some(&config)).await?
            };
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

fn table(functions: &[FunctionInfo]) -> String {
    let width = functions
        .iter()
        .map(|f| f.name.as_str().len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<12}  {:>9}  UPDATED\n",
        "NAME", "VERSION", "SIZE"
    );
    for f in functions {
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:>9}  {}\n",
            f.name.as_str(),
            f.current.version.short(),
            format_bytes(f.current.package_size),
            format_time(f.updated_at)
        ));
    }
    out
}

fn details(info: &FunctionInfo, server: &str) -> String {
    let config = &info.current.config;
    let mut lines: Vec<(&str, String)> = vec![
        ("name", info.name.to_string()),
        ("env", info.env.to_string()),
        ("version", info.current.version.to_string()),
        ("created", format_time(info.current.created_at)),
        ("updated", format_time(info.updated_at)),
        ("package", format_bytes(info.current.package_size)),
        ("handler", config.handler.to_string()),
        ("timeout", format!("{} s", config.timeout)),
        ("memory", format!("{} MB", config.memory_size)),
    ];
    if config.runtime != cloudlet_core::Runtime::Js {
        lines.push(("runtime", config.runtime.name().to_owned()));
    }
    if let Some(engine) = &info.engine {
        let engine = match &info.engine_note {
            Some(note) => format!("{engine} ({note})"),
            None => engine.clone(),
        };
        lines.push(("engine", engine));
    }
    if !config.env_variables.is_empty() {
        // Names only: values are often secrets.
        let names: Vec<&str> = config.env_variables.keys().map(String::as_str).collect();
        lines.push(("variables", names.join(", ")));
    }
    for trigger in &config.triggers {
        lines.push(("trigger", format!("{} ({})", trigger.name, trigger.kind)));
    }
    lines.push((
        "invoke",
        format!("POST {server}/v1/envs/{}/functions/{}", info.env, info.name),
    ));
    lines
        .into_iter()
        .map(|(label, value)| format!("{label:<10}{value}\n"))
        .collect()
}
