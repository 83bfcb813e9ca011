//! `cloudlet envs list|key|cors`.

use cloudlet_core::{CorsSettings, EnvId};

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
        /// Issue the env's publishable key instead (`pk_…`): it may invoke and
        /// upload temporary objects, nothing else, so web pages may carry it.
        /// The env's own key is unchanged.
        #[arg(long)]
        publishable: bool,
    },
    /// Show an env's CORS settings: the web origins whose pages may call its
    /// functions from a browser. With --origin, set them; with --remove,
    /// remove them (no page may call).
    Cors(CorsArgs),
}

#[derive(clap::Args, Debug)]
pub struct CorsArgs {
    /// The env the settings are for.
    env: EnvId,
    /// An origin whose pages may call (`https://app.example.com`,
    /// `https://*.example.com`, `*`); repeat for more. Setting replaces the
    /// env's settings.
    #[arg(long = "origin", value_name = "ORIGIN")]
    origins: Vec<String>,
    /// A method pages may use (default: GET, POST, PUT, PATCH, DELETE, HEAD); repeat for more.
    #[arg(long = "method", value_name = "METHOD", requires = "origins")]
    methods: Vec<String>,
    /// A request header pages may send (default: any they ask for); repeat for more.
    #[arg(long = "header", value_name = "NAME", requires = "origins")]
    headers: Vec<String>,
    /// Let pages send cookies and Authorization.
    #[arg(long, requires = "origins")]
    credentials: bool,
    /// Seconds a browser may cache a preflight's answer (default 600).
    #[arg(long, value_name = "SECONDS", requires = "origins")]
    max_age: Option<u32>,
    /// Remove the env's settings.
    #[arg(long, conflicts_with = "origins")]
    remove: bool,
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
        EnvsCommand::Key { env, publishable } => {
            if publishable {
                let key = client.issue_publishable_key(&env).await?;
                println!("{key}");
                eprintln!("publishable key for env {env}: it may invoke and upload, nothing else");
            } else {
                let key = client.issue_key(&env).await?;
                println!("{key}");
                eprintln!("invoke key for env {env}: pass it as --key or CLOUDLET_KEY");
            }
        }
        EnvsCommand::Cors(args) => cors(&client, args).await?,
    }
    Ok(())
}

async fn cors(client: &cloudlet_client::Client, args: CorsArgs) -> anyhow::Result<()> {
    let env = args.env;
    if args.remove {
        client.remove_cors(&env).await?;
        eprintln!("env {env} has no CORS settings: no browser page may call it");
        return Ok(());
    }
    let settings = if args.origins.is_empty() {
        client.cors(&env).await?
    } else {
        let settings = CorsSettings {
            allowed_origins: args.origins,
            allowed_methods: args.methods,
            allowed_headers: args.headers,
            allow_credentials: args.credentials,
            max_age_seconds: args.max_age,
        };
        Some(client.set_cors(&env, &settings).await?)
    };
    match settings {
        Some(settings) => println!("{}", serde_json::to_string_pretty(&settings)?),
        None => eprintln!("env {env} has no CORS settings: no browser page may call it"),
    }
    Ok(())
}
