//! `cloudlet deploy DIR`: pack a function folder, validate it locally, upload it.
//! A folder in a CloudBase CLI project gets its settings from the project's
//! `cloudbaserc.json`, as under `cloudlet dev`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cloudlet_core::{EnvId, FunctionName};

use super::{cloudbaserc, format_bytes, Global};

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The function folder: index.js (or the file config.json's handler names),
    /// optional config.json, package.json and node_modules.
    pub dir: PathBuf,

    /// The function's name (default: the folder's name).
    #[arg(long)]
    pub name: Option<FunctionName>,

    /// The env to deploy into.
    #[arg(long, default_value = "default")]
    pub env: EnvId,

    /// Print the deployed function as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &Global, args: DeployArgs) -> anyhow::Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => name_from_dir(&args.dir)?,
    };
    let client = global.client()?;
    let dir = args.dir.clone();
    // Reading a folder with node_modules is blocking work.
    let archive = tokio::task::spawn_blocking(move || {
        let settings = cloudbaserc::settings_for_folder(&dir)?;
        let package =
            cloudbaserc::read_package(&dir, settings.as_ref()).map_err(anyhow::Error::msg)?;
        package
            .to_tar_gz()
            .with_context(|| format!("cannot pack {}", dir.display()))
    })
    .await
    .context("packing the function folder failed")??;
    let info = client.deploy(&args.env, &name, archive).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!(
            "deployed {} to env {}: version {}, {}, {} engine",
            info.name,
            info.env,
            info.current.version.short(),
            format_bytes(info.current.package_size),
            info.engine.as_deref().unwrap_or("js")
        );
        if let Some(note) = &info.engine_note {
            eprintln!("warning: {note}");
        }
    }
    Ok(())
}

/// The function name a folder gives when no --name is passed.
pub fn name_from_dir(dir: &Path) -> anyhow::Result<FunctionName> {
    // `cloudlet deploy .` means the current folder's name.
    let absolute = dir
        .canonicalize()
        .with_context(|| format!("cannot open the function folder {}", dir.display()))?;
    let folder = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable folder name; pass --name", dir.display()))?;
    FunctionName::parse(folder)
        .with_context(|| format!("the folder name {folder:?} is not a function name; pass --name"))
}
