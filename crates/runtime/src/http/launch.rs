//! Starting an instance: the bootstrap in a process group of its own, with
//! the bind shim preloaded and the function's environment, then a wait until
//! its server accepts connections.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cloudlet_core::package::HTTP_FUNCTION_BOOTSTRAP;
use cloudlet_core::LogLevel;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::instance::{Instance, Readiness};
use super::output;
use super::Shared;
use crate::DeployedFunction;

/// The bind shim, compiled by `build.rs`.
const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libcloudlet_bind_shim.so"));

/// How long a stopped instance has to exit after SIGTERM before SIGKILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);

/// The server's variables an instance keeps; the rest of the server's
/// environment (its keys among them) is not the function's business.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// How often the start waits between attempts to connect: often at first,
/// since most servers listen within milliseconds, then less.
const FIRST_PROBES: Duration = Duration::from_millis(1);
const LATER_PROBES: Duration = Duration::from_millis(10);
const OFTEN_FOR: Duration = Duration::from_millis(500);

/// How long a failed start waits for the rest of the processes' output.
const OUTPUT_SETTLES: Duration = Duration::from_millis(500);

pub(super) fn write_shim(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, SHIM)
}

/// Starts processes from one thread that lives as long as the engine.
///
/// A bootstrap dies with the thread that started it (`PR_SET_PDEATHSIG` is
/// tied to the thread, not the process), and tokio's threads come and go:
/// a worker that runs a long JS stretch becomes a blocking thread that ends
/// when idle. This thread ends only when the engine goes, and its children
/// with it, so no instance outlives a server that was killed.
pub(super) struct Spawner {
    requests: std::sync::mpsc::Sender<(Command, oneshot::Sender<std::io::Result<Child>>)>,
}

impl Spawner {
    pub(super) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let (requests, incoming) =
            std::sync::mpsc::channel::<(Command, oneshot::Sender<std::io::Result<Child>>)>();
        std::thread::Builder::new()
            .name("cloudlet-http-spawner".into())
            .spawn(move || {
                // tokio's children need its runtime for their exit status.
                let _runtime = runtime.enter();
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(Self { requests })
    }

    async fn spawn(&self, command: Command) -> std::io::Result<Child> {
        let (reply, child) = oneshot::channel();
        self.requests
            .send((command, reply))
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
        child
            .await
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
    }
}

/// A port on loopback that nothing listens on now, for a new instance.
pub(super) fn free_port() -> std::io::Result<u16> {
    let probe = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    Ok(probe.local_addr()?.port())
}

/// Starts `instance`'s processes and settles its readiness: ready once its
/// server accepts connections, failed if the bootstrap cannot run, exits
/// first, or does not listen within the startup timeout.
pub(super) async fn launch(
    shared: Arc<Shared>,
    function: Arc<DeployedFunction>,
    folder: std::path::PathBuf,
    instance: Arc<Instance>,
) {
    let command = command(&shared, &function, &folder, instance.port);
    let mut child = match shared.spawner.spawn(command).await {
        Ok(child) => child,
        Err(error) => {
            instance.set_ready(Readiness::Failed(format!(
                "scf_bootstrap could not be started: {error}"
            )));
            return;
        }
    };
    if let Some(pid) = child.id() {
        instance.set_group(pid);
    }
    let pipes = [
        (
            child
                .stdout
                .take()
                .and_then(|pipe| pipe.into_owned_fd().ok()),
            LogLevel::Info,
        ),
        (
            child
                .stderr
                .take()
                .and_then(|pipe| pipe.into_owned_fd().ok()),
            LogLevel::Error,
        ),
    ];
    let readers = pipes.map(|(pipe, level)| {
        pipe.map(|pipe| tokio::spawn(output::capture(pipe, level, Arc::clone(&instance.output))))
    });
    tokio::spawn(watch_exit(child, Arc::downgrade(&instance)));
    let mut readiness = wait_until_listening(&instance, shared.options.startup_timeout).await;
    if let Readiness::Failed(what) = &readiness {
        instance.kill(super::instance::Killed::Stopped);
        // What it printed last explains the failure: read to the end of
        // its pipes first, which close once its processes are gone.
        let read = futures_util::future::join_all(readers.into_iter().flatten());
        let _ = tokio::time::timeout(OUTPUT_SETTLES, read).await;
        readiness = Readiness::Failed(explained(&instance, what));
    }
    instance.set_ready(readiness);
}

/// The bootstrap's command: run in the function's folder, in a new process
/// group, with the function's environment.
fn command(shared: &Shared, function: &DeployedFunction, folder: &Path, port: u16) -> Command {
    let mut command = Command::new(folder.join(HTTP_FUNCTION_BOOTSTRAP));
    command
        .current_dir(folder)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for name in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let port = port.to_string();
    command
        .env("TENCENTCLOUD_RUNENV", "SCF")
        .env("SCF_RUNTIME", function.config.runtime.name())
        .env(
            "SCF_FUNCTIONMEMORYSIZE",
            function.config.memory_size.to_string(),
        )
        .envs(function.scf_variables())
        .envs(&function.config.env_variables)
        .env("PORT", &port)
        .env("CLOUDLET_INSTANCE_PORT", &port)
        .env("LD_PRELOAD", &shared.dirs.shim);
    // SAFETY: between fork and exec only async-signal-safe calls are made:
    // prctl(2) and getppid(2) are system calls that allocate nothing.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            // The bootstrap dies with the spawner thread (see `Spawner`).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the server exited during the start"));
            }
            Ok(())
        });
    }
    command
}

/// Settles the instance once its bootstrap exits, whatever the reason.
async fn watch_exit(mut child: Child, instance: Weak<Instance>) {
    let status = child.wait().await;
    let Some(instance) = instance.upgrade() else {
        return;
    };
    let status = match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("could not be waited for: {error}"),
    };
    instance.set_exited(status);
}

/// Connects to the instance's port until its server accepts, the bootstrap
/// exits, or `timeout` passes.
async fn wait_until_listening(instance: &Instance, timeout: Duration) -> Readiness {
    let started = Instant::now();
    let address = (std::net::Ipv4Addr::LOCALHOST, instance.port);
    loop {
        if instance.has_exited() {
            return Readiness::Failed(
                "scf_bootstrap exited before its server accepted connections".into(),
            );
        }
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Readiness::Ready;
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Readiness::Failed(format!(
                "the server did not accept connections on port 9000 (or $PORT) within {} s",
                timeout.as_secs_f32()
            ));
        }
        let pause = if waited < OFTEN_FOR {
            FIRST_PROBES
        } else {
            LATER_PROBES
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = instance.exited() => {}
        }
    }
}

/// `what`, followed by how the bootstrap exited and its last output.
pub(super) fn explained(instance: &Instance, what: &str) -> String {
    let mut message = what.to_owned();
    if let Some(status) = instance.exit_status() {
        message.push_str(&format!(" (scf_bootstrap {status})"));
    }
    let tail = instance.output.tail();
    if !tail.is_empty() {
        message.push_str(". Its last output:\n");
        message.push_str(&tail);
    }
    message
}
