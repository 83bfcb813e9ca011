//! `cloudlet dev DIR`: an in-process server that serves every function folder in
//! DIR and keeps each one deployed as its files change.
//!
//! The watcher only reports which top-level folders changed; the folder's state
//! at that moment decides what happens: a function folder is packed and deployed
//! (skipped when its content version is unchanged), a folder that disappeared is
//! removed. Deploying through the HTTP client, as `cloudlet deploy` does, keeps
//! one code path for validation and versioning. A project's `cloudbaserc.json`
//! adds its per-function settings to each package (`cloudbaserc.rs`), and a
//! change to it redeploys the functions whose settings changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cloudlet_client::{Client, ClientError};
use cloudlet_core::{EnvId, ErrorCode, FunctionName, VersionId};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::cloudbaserc::{self, Project};
use crate::serve::{self, ServeArgs};

/// Changes closer together than this become one redeploy (an editor's save is
/// often a write, a rename and a chmod).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The longest a stream of changes is collected before the folders are synced.
const MAX_BATCH: Duration = Duration::from_secs(2);

/// What the watcher sends: the paths one file-system event touched.
type WatchEvent = notify::Result<Vec<PathBuf>>;

/// The full help of `cloudlet dev`.
pub const LONG_ABOUT: &str =
    "Serve every function folder in DIR and redeploy each one when its files change.\n\n\
    DIR holds one folder per function (CloudBase layout: DIR/<name>/index.js, optional \
    config.json, package.json and node_modules); other entries are ignored. When DIR has a \
    cloudbaserc.json with \"functionRoot\", the functions are in that sub-folder instead, and \
    the settings its \"functions\" entries give (timeout, memorySize, envVariables, runtime, \
    handler, triggers) apply under those of each folder's config.json. \
    Deleting a folder removes its function. The functions' console output is echoed here \
    (--no-function-logs turns that off).";

#[derive(clap::Args, Debug)]
// Echoing function logs is always on in dev; --no-function-logs is the switch here.
#[command(mut_arg("print_function_logs", |arg| arg.hide(true)))]
pub struct DevArgs {
    /// The folder holding the function folders.
    pub dir: PathBuf,

    /// The env the functions are deployed into.
    #[arg(long, default_value = "default")]
    pub env: EnvId,

    /// Do not echo the functions' console output.
    #[arg(long)]
    pub no_function_logs: bool,

    #[command(flatten)]
    pub serve: ServeArgs,
}

pub async fn run(mut args: DevArgs) -> anyhow::Result<()> {
    if !args.no_function_logs {
        args.serve.print_function_logs = true;
    }
    let project = Project::open(&args.dir)?;
    let root = project.function_root.clone();

    // Watch before the first deploy so an edit made while it runs is not lost.
    let (events_tx, events) = mpsc::unbounded_channel::<WatchEvent>();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let paths = match result {
            Ok(event) if changes_content(&event.kind) => Ok(event.paths),
            Ok(_) => return,
            Err(error) => Err(error),
        };
        let _ = events_tx.send(paths);
    })
    .context("cannot start the file watcher")?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", root.display()))?;
    // The project file, when it is outside the function root: its folder, not
    // the file, because editors save by replacing the file.
    if let Some(rc_dir) = project.rc_path.as_deref().and_then(Path::parent) {
        if !rc_dir.starts_with(&root) {
            watcher
                .watch(rc_dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", rc_dir.display()))?;
        }
    }

    let admin_key = args.serve.admin_key.clone();
    let server = serve::start(args.serve).await?;
    let url = server.url();
    let dev = Dev {
        client: Client::new(&url, admin_key)?,
        env: args.env,
        root,
        project,
        url,
        known: BTreeMap::new(),
    };
    let syncing = tokio::spawn(dev.run(events));
    let result = server.wait().await;
    syncing.abort();
    drop(watcher);
    result
}

/// False for events that only read: packing a folder opens every file in it,
/// and those events must not trigger another pack.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// A folder that looks like a function: CloudBase's default handler file, or a
/// config.json that may name another one (or, checked by the caller, an entry
/// in the project's cloudbaserc.json).
fn is_function_folder(dir: &Path) -> bool {
    dir.join("index.js").is_file() || dir.join("config.json").is_file()
}

struct Dev {
    client: Client,
    env: EnvId,
    root: PathBuf,
    project: Project,
    url: String,
    /// Folders seen as functions this session, with the version last deployed
    /// from each (`None` until one deploys; a failed deploy keeps the last good one,
    /// which the server goes on serving).
    known: BTreeMap<String, Option<VersionId>>,
}

impl Dev {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<WatchEvent>) {
        self.deploy_all().await;
        while let Some(first) = events.recv().await {
            // Collect until the files have been quiet for DEBOUNCE, or for at most
            // MAX_BATCH when something keeps writing.
            let mut folders = BTreeSet::new();
            self.collect(first, &mut folders);
            let deadline = tokio::time::Instant::now() + MAX_BATCH;
            while let Ok(Some(next)) = tokio::time::timeout(DEBOUNCE, events.recv()).await {
                self.collect(next, &mut folders);
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            for folder in folders {
                self.sync(&folder).await;
            }
        }
    }

    fn collect(&mut self, event: WatchEvent, folders: &mut BTreeSet<String>) {
        match event {
            Ok(paths) => {
                for path in paths {
                    if self.project.rc_path.as_deref() == Some(path.as_path()) {
                        folders.extend(self.project.reload());
                    } else {
                        folders.extend(self.folder_of(&path));
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "file watcher error"),
        }
    }

    async fn deploy_all(&mut self) {
        let mut folders = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| !name.starts_with('.'))
                .collect::<Vec<_>>(),
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", self.root.display());
                Vec::new()
            }
        };
        folders.sort();
        for folder in &folders {
            self.sync(folder).await;
        }
        let deployed: Vec<&str> = self
            .known
            .iter()
            .filter(|(_, version)| version.is_some())
            .map(|(name, _)| name.as_str())
            .collect();
        println!(
            "serving {} function{} from {}{}",
            deployed.len(),
            if deployed.len() == 1 { "" } else { "s" },
            self.root.display(),
            if deployed.is_empty() {
                String::new()
            } else {
                format!(": {}", deployed.join(", "))
            }
        );
        let example = deployed.first().copied().unwrap_or("NAME");
        let path = if self.env == EnvId::default_env() {
            format!("/v1/functions/{example}")
        } else {
            format!("/v1/envs/{}/functions/{example}", self.env)
        };
        println!("try: curl -s -X POST {}{path} -d '{{}}'", self.url);
        println!(
            "watching {} for changes (Ctrl-C to stop)",
            self.root.display()
        );
    }

    /// The top-level folder a changed path belongs to.
    fn folder_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        match relative.components().next()? {
            // Hidden entries (`.git`, a `.cloudlet` data dir) are never functions.
            Component::Normal(name) => name
                .to_str()
                .filter(|n| !n.starts_with('.'))
                .map(str::to_owned),
            _ => None,
        }
    }

    /// Brings the function of one folder in line with the folder.
    async fn sync(&mut self, folder: &str) {
        let dir = self.root.join(folder);
        let known = self.known.contains_key(folder);
        if !dir.is_dir() {
            if known {
                self.known.remove(folder);
                self.remove(folder).await;
            }
            return;
        }
        // A known folder that lost its handler is deployed anyway, so the
        // missing-file error is shown rather than the change being ignored.
        let settings = self.project.settings(folder);
        if !known && settings.is_none() && !is_function_folder(&dir) {
            return;
        }
        let name = match FunctionName::parse(folder) {
            Ok(name) => name,
            Err(error) => {
                eprintln!("error: skipping the folder {folder}: {error}");
                return;
            }
        };
        let previous = self.known.get(folder).cloned().flatten();
        let packed = tokio::task::spawn_blocking(move || {
            let package = cloudbaserc::read_package(&dir, settings.as_ref())?;
            let archive = package.to_tar_gz().map_err(|error| {
                format!(
                    "the function folder {} is not valid: {error}",
                    dir.display()
                )
            })?;
            Ok::<_, String>((package.version().clone(), archive))
        })
        .await;
        let (version, archive) = match packed {
            Ok(Ok(packed)) => packed,
            Ok(Err(error)) => {
                eprintln!("error: {name} not deployed: {error}");
                self.known.insert(folder.to_owned(), previous);
                return;
            }
            Err(error) => {
                eprintln!("error: {name} not deployed: packing failed: {error}");
                return;
            }
        };
        if previous.as_ref() == Some(&version) {
            return;
        }
        match self.client.deploy(&self.env, &name, archive).await {
            Ok(info) => {
                println!(
                    "{} {name} (version {}, {} engine)",
                    if previous.is_some() {
                        "redeployed"
                    } else {
                        "deployed"
                    },
                    info.current.version.short(),
                    info.engine.as_deref().unwrap_or("js")
                );
                if let Some(note) = &info.engine_note {
                    eprintln!("warning: {name}: {note}");
                }
                self.known.insert(folder.to_owned(), Some(version));
            }
            Err(error) => {
                eprintln!("error: {name} not deployed: {error}");
                self.known.insert(folder.to_owned(), previous);
            }
        }
    }

    async fn remove(&self, folder: &str) {
        let Ok(name) = FunctionName::parse(folder) else {
            return;
        };
        match self.client.remove(&self.env, &name).await {
            Ok(()) => println!("removed {name}"),
            Err(ClientError::Api { body, .. }) if body.code == ErrorCode::FunctionNotFound => {}
            Err(error) => eprintln!("error: could not remove {name}: {error}"),
        }
    }
}
