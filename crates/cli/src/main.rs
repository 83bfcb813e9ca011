//! `cloudlet`: runs the server (`serve`, `dev`) and talks to one (`deploy`,
//! `invoke`, `logs`, `functions`, `envs`).

mod commands;
mod config_file;
mod serve;

/// mimalloc rather than the system allocator: QuickJS allocates through it too
/// (see `Instance::create`), and a warm invocation makes dozens of small
/// allocations, where glibc malloc showed up as a tenth of the server's profile.
/// The heap meter around it holds functions to their memory limit for what
/// QuickJS does not count itself (Buffers and other native allocations).
#[global_allocator]
static GLOBAL: cloudlet_runtime::HeapMeter<mimalloc::MiMalloc> =
    cloudlet_runtime::HeapMeter(mimalloc::MiMalloc);

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::commands::Global;

/// Threads of tokio's blocking pool beyond one per invocation: the store's
/// work, package decoding, and the workers that block_in_place moves.
const BLOCKING_THREADS_BESIDE_INVOCATIONS: usize = 64;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server answered with an error: the function failed (FUNCTION_INVOCATION_FAILED,
     FUNCTION_TIME_LIMIT_EXCEEDED, …), or the function, env or record does not exist
  2  the command could not be carried out: bad arguments, invalid JSON, an invalid
     function folder, or no server at --server";

#[derive(Parser, Debug)]
#[command(
    name = "cloudlet",
    version,
    about = "Run CloudBase, Function Compute and Lambda-style JavaScript functions on your own machine",
    long_about = "Run CloudBase, Function Compute and Lambda-style JavaScript functions on your own machine.\n\n\
        `cloudlet dev DIR` serves every function folder in DIR and redeploys on change; \
        `cloudlet serve` runs a long-lived server that `deploy`, `invoke`, `logs`, \
        `functions` and `envs` talk to over HTTP (see docs/api.md).",
    after_help = EXIT_CODES,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the HTTP API on --listen, data in --data-dir.
    Serve(serve::ServeArgs),
    /// Serve every function folder in DIR and redeploy each one when its files change.
    #[command(long_about = commands::dev::LONG_ABOUT)]
    Dev(commands::dev::DevArgs),
    /// Package a function folder and deploy it.
    Deploy(commands::deploy::DeployArgs),
    /// Invoke a function and print its result as JSON.
    #[command(long_about = commands::invoke::LONG_ABOUT, after_help = EXIT_CODES)]
    Invoke(commands::invoke::InvokeArgs),
    /// Show the record of one invocation: status, timings, result or error,
    /// and logs; or, with --function, a function's latest invocations and
    /// (with --follow) each one as it finishes.
    Logs(commands::logs::LogsArgs),
    /// List an env's invocations, filtered by function, status and
    /// trigger; cancel an asynchronous one that waits to run.
    #[command(subcommand)]
    Invocations(commands::invocations::InvocationsCommand),
    /// List, show and remove functions.
    #[command(subcommand)]
    Functions(commands::functions::FunctionsCommand),
    /// List envs and issue env keys.
    #[command(subcommand)]
    Envs(commands::envs::EnvsCommand),
    /// List, add and remove the HTTP access service's routes: a host and a
    /// path prefix leading to a function.
    #[command(subcommand)]
    Routes(commands::routes::RoutesCommand),
    /// An env's dead letters: asynchronous invocations that will not run
    /// again; list, re-drive or purge them.
    #[command(subcommand)]
    DeadLetters(commands::dead_letters::DeadLettersCommand),
    /// Publish a message to a topic: each function of the env that
    /// subscribes to it gets it, one way, through the asynchronous queue.
    Publish(commands::publish::PublishArgs),
    /// List an env's triggers, each timer with its next firing.
    #[command(subcommand)]
    Triggers(commands::triggers::TriggersCommand),
    /// Show where an env's asynchronous invocations stand, per function:
    /// queued, running, retrying, dead letters, and the oldest's age.
    Queue(commands::queue::QueueArgs),
    /// Show what the server holds: invocation records on disk, instances in memory.
    Status(commands::status::StatusArgs),
}

/// Parses the command line, over the defaults of a `--config` file when
/// `serve` or `dev` names one.
fn parse_cli() -> Cli {
    let matches = Cli::command().get_matches();
    let matches = match config_file::with_file_defaults(Cli::command(), &matches) {
        Ok(Some(command)) => command.get_matches(),
        Ok(None) => matches,
        Err(message) => Cli::command()
            .error(clap::error::ErrorKind::InvalidValue, message)
            .exit(),
    };
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

fn main() -> ExitCode {
    let cli = parse_cli();
    let server_command = matches!(cli.command, Command::Serve(_) | Command::Dev(_));
    init_tracing(if server_command { "info" } else { "warn" });

    let serve = match &cli.command {
        Command::Serve(args) => Some(args),
        Command::Dev(args) => Some(&args.serve),
        _ => None,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // A thread started from one of the long-running lane's threads would
    // inherit its SCHED_IDLE policy, and might become a worker.
    builder.on_thread_start(cloudlet_runtime::js::priority::normal_priority_for_new_thread);
    if let Some(n) = serve.and_then(|args| args.worker_threads) {
        builder.worker_threads(n.max(1));
    }
    if let Some(args) = serve {
        // Every invocation may hold one thread of the blocking pool (once it
        // runs long, see the runtime's js/lane.rs), and tokio moves its
        // workers onto that pool too: it must outnumber the invocations, or a
        // full pool would leave the workers without threads.
        builder.max_blocking_threads(
            args.max_concurrent_invocations
                .saturating_add(BLOCKING_THREADS_BESIDE_INVOCATIONS),
        );
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };

    let result = runtime.block_on(run(cli));
    // Blocking tasks (a file read, a store close) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(commands::report(&error)),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => serve::start(args).await?.wait().await,
        Command::Dev(args) => commands::dev::run(args).await,
        Command::Deploy(args) => commands::deploy::run(&global, args).await,
        Command::Invoke(args) => commands::invoke::run(&global, args).await,
        Command::Logs(args) => commands::logs::run(&global, args).await,
        Command::Functions(command) => commands::functions::run(&global, command).await,
        Command::Envs(command) => commands::envs::run(&global, command).await,
        Command::Routes(command) => commands::routes::run(&global, command).await,
        Command::DeadLetters(command) => commands::dead_letters::run(&global, command).await,
        Command::Invocations(command) => commands::invocations::run(&global, command).await,
        Command::Queue(args) => commands::queue::run(&global, args).await,
        Command::Triggers(command) => commands::triggers::run(&global, command).await,
        Command::Publish(args) => commands::publish::run(&global, args).await,
        Command::Status(args) => commands::status::run(&global, args).await,
    }
}

/// Logs go to stderr so that stdout stays the command's output (JSON results,
/// `cloudlet listening on …`). `RUST_LOG` overrides the default level.
fn init_tracing(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes would end up verbatim in a redirected log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Parses `args` as `parse_cli` does.
    fn parse(args: &[&str]) -> Result<Cli, String> {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        let matches = match config_file::with_file_defaults(Cli::command(), &matches)? {
            Some(command) => command
                .try_get_matches_from(args)
                .map_err(|e| e.to_string())?,
            None => matches,
        };
        Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
    }

    fn serve_args(cli: Cli) -> serve::ServeArgs {
        match cli.command {
            Command::Serve(args) => args,
            Command::Dev(args) => args.serve,
            other => panic!("not a server command: {other:?}"),
        }
    }

    #[test]
    fn a_config_file_sets_defaults_that_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cloudlet.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nmax-body-bytes = 1234\nmax_log_bytes = 99\nprint-function-logs = true\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();

        let args = serve_args(parse(&["cloudlet", "serve", "--config", path]).unwrap());
        assert_eq!(args.listen, "127.0.0.1:9999");
        assert_eq!(args.max_body_bytes, 1234);
        assert_eq!(args.max_log_bytes, 99);
        assert!(args.print_function_logs);
        assert_eq!(args.max_result_bytes, 6 * 1024 * 1024);

        let args = serve_args(
            parse(&[
                "cloudlet",
                "serve",
                "--config",
                path,
                "--max-body-bytes",
                "7",
            ])
            .unwrap(),
        );
        assert_eq!(args.max_body_bytes, 7);
        assert_eq!(args.listen, "127.0.0.1:9999");

        let args = serve_args(parse(&["cloudlet", "dev", "fns", "--config", path]).unwrap());
        assert_eq!(args.max_body_bytes, 1234);
    }

    #[test]
    fn a_config_file_is_checked_like_flags() {
        let dir = tempfile::tempdir().unwrap();
        let check = |text: &str| {
            let file = dir.path().join("bad.toml");
            std::fs::write(&file, text).unwrap();
            parse(&["cloudlet", "serve", "--config", file.to_str().unwrap()]).expect_err("refused")
        };
        assert!(check("max-body-byte = 1").contains("unknown setting \"max-body-byte\""));
        assert!(check("max-body-bytes = \"lots\"").contains("lots"));
        assert!(check("listen = [1]").contains("takes a string"));
        assert!(check("listen = ").contains("not valid TOML"));
        assert!(check("config = \"other.toml\"").contains("unknown setting"));
        let missing = parse(&[
            "cloudlet",
            "serve",
            "--config",
            "/nonexistent/cloudlet.toml",
        ]);
        assert!(missing
            .expect_err("refused")
            .contains("cannot read the config file"));
    }
}
