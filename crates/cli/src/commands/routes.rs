//! `cloudlet routes list|add|rm`: the access service's routes, from a host
//! and a path prefix to a function.

use cloudlet_core::{EnvId, FunctionName, HostPattern, PathPrefix, Route, RouteAuth};

use super::Global;

#[derive(clap::Subcommand, Debug)]
pub enum RoutesCommand {
    /// List the routes, by host, then path.
    #[command(visible_alias = "ls")]
    List {
        /// Only the routes to this env's functions.
        #[arg(long)]
        env: Option<EnvId>,
        /// Print the routes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Route requests for PATH (and the paths below it) to FUNCTION.
    Add(AddArgs),
    /// Remove the route of a host and path.
    #[command(visible_alias = "remove")]
    Rm {
        /// The route's path prefix.
        path: PathPrefix,
        /// The route's host (default: `*`, any host).
        #[arg(long, default_value = "*")]
        host: HostPattern,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The path prefix (`/api`): it takes `/api` and `/api/…`, not `/apis`.
    path: PathPrefix,
    /// The function requests go to.
    function: FunctionName,
    /// The function's env.
    #[arg(long, default_value = "default")]
    env: EnvId,
    /// The host the route answers: `shop.example.com`, `*.example.com`, or
    /// `*` (any host, the default).
    #[arg(long, default_value = "*")]
    host: HostPattern,
    /// Hand the function the whole path (`/api/users`) rather than the path
    /// below the prefix (`/users`, the default).
    #[arg(long)]
    keep_prefix: bool,
    /// Require the env's key (or the admin key) in `Authorization: Bearer`;
    /// without it the route is public.
    #[arg(long)]
    require_key: bool,
}

pub async fn run(global: &Global, command: RoutesCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        RoutesCommand::List { env, json } => {
            let routes: Vec<Route> = client
                .routes()
                .await?
                .into_iter()
                .filter(|route| env.as_ref().is_none_or(|env| route.env == *env))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&routes)?);
            } else if routes.is_empty() {
                eprintln!("no routes yet: `cloudlet routes add PATH FUNCTION` adds one");
            } else {
                print_table(&routes);
            }
        }
        RoutesCommand::Add(args) => {
            let route = Route {
                host: args.host,
                prefix: args.path,
                env: args.env,
                function: args.function,
                keep_prefix: args.keep_prefix,
                auth: if args.require_key {
                    RouteAuth::Key
                } else {
                    RouteAuth::Public
                },
                created_at: 0,
            };
            let route = client.add_route(&route).await?;
            print_table(std::slice::from_ref(&route));
        }
        RoutesCommand::Rm { path, host } => {
            client.remove_route(&host, &path).await?;
            eprintln!("removed the route of host {host} at {path}");
        }
    }
    Ok(())
}

fn print_table(routes: &[Route]) {
    let rows: Vec<[String; 5]> = routes
        .iter()
        .map(|route| {
            [
                route.host.to_string(),
                route.prefix.to_string(),
                format!("{}/{}", route.env, route.function),
                route.auth.as_str().to_owned(),
                if route.keep_prefix {
                    "whole"
                } else {
                    "below prefix"
                }
                .to_owned(),
            ]
        })
        .collect();
    let header = ["HOST", "PATH", "ENV/FUNCTION", "AUTH", "FUNCTION SEES"];
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].len())
            .chain([header[column].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let line = |cells: [&str; 5]| {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
}
