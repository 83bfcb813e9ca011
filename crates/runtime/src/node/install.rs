//! Dependencies installed at deploy: a function whose `package.json` names
//! dependencies and whose package brings no `node_modules` gets them from
//! npm (`npm ci` with a lockfile, else `npm install --omit=dev`), as
//! CloudBase's online dependency install does, unless its `config.json`
//! says `"installDependency": false`.
//!
//! Installs are kept by the hash of `package.json` and the lockfile, so
//! redeploying a function whose code changed but whose dependencies did not
//! (every `cloudlet dev` edit) reuses the modules already installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cloudlet_core::Package;
use sha2::{Digest, Sha256};

/// How long one install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The most of npm's output a failed install reports.
const OUTPUT_SHOWN: usize = 4000;

/// An install no deploy or first invocation has used for this long is
/// removed when the engine starts, so the cache does not grow for good.
const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// The installed `node_modules` a package needs, if it needs any: the hash
/// that names them.
pub(crate) fn needed(package: &Package) -> Option<String> {
    if package.config().install_dependency == Some(false) {
        return None;
    }
    let manifest = package.file("package.json")?;
    if package
        .files()
        .keys()
        .any(|path| path.starts_with("node_modules/"))
    {
        return None;
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(cloudlet_core::without_bom(manifest)).ok()?;
    let has_dependencies = parsed["dependencies"]
        .as_object()
        .is_some_and(|dependencies| !dependencies.is_empty());
    if !has_dependencies {
        return None;
    }
    let mut hash = Sha256::new();
    hash.update(manifest);
    if let Some(lock) = package.file("package-lock.json") {
        hash.update(lock);
    }
    Some(hex::encode(hash.finalize()))
}

/// Installs the package's dependencies into `modules/<hash>/node_modules`
/// unless they are there already, and returns that folder.
pub(crate) async fn install(
    package: &Package,
    hash: &str,
    modules: &Path,
    npm: &Path,
) -> Result<PathBuf, String> {
    let target = modules.join(hash);
    let installed = target.join("node_modules");
    if installed.exists() {
        mark_used(&target);
        return Ok(installed);
    }
    // Each install its own staging folder: the same dependencies may be
    // installed for several deploys at once; the first to finish is kept.
    let staging = crate::folder::unique_sibling(&target, "installing");
    let _ = tokio::fs::remove_dir_all(&staging).await;
    tokio::fs::create_dir_all(&staging)
        .await
        .map_err(|e| format!("cannot prepare the install: {e}"))?;
    for file in ["package.json", "package-lock.json"] {
        if let Some(bytes) = package.file(file) {
            tokio::fs::write(staging.join(file), bytes)
                .await
                .map_err(|e| format!("cannot prepare the install: {e}"))?;
        }
    }
    let ci = package.file("package-lock.json").is_some();
    let result = run_npm(npm, &staging, ci).await;
    if let Err(error) = result {
        let _ = tokio::fs::remove_dir_all(&staging).await;
        return Err(error);
    }
    // Another deploy of the same dependencies may have finished first: theirs stays.
    if tokio::fs::rename(&staging, &target).await.is_err() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    Ok(installed)
}

/// Marks an install as used now (its folder's modification time), for
/// [`remove_unused`].
fn mark_used(install: &Path) {
    let now = std::time::SystemTime::now();
    if let Ok(folder) = std::fs::File::open(install) {
        let _ = folder.set_modified(now);
    }
}

/// Removes the installs unused for [`UNUSED_FOR`] and the staging folders of
/// installs an earlier run did not finish.
pub(crate) fn remove_unused(modules: &Path) {
    let Ok(entries) = std::fs::read_dir(modules) else {
        return;
    };
    for entry in entries.flatten() {
        let unfinished = entry.file_name().to_string_lossy().contains(".installing");
        let unused = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > UNUSED_FOR);
        if unfinished || unused {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

async fn run_npm(npm: &Path, dir: &Path, ci: bool) -> Result<(), String> {
    let mut command = tokio::process::Command::new(npm);
    if ci {
        command.args(["ci", "--omit=dev"]);
    } else {
        command.args(["install", "--omit=dev"]);
    }
    command
        .args([
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let what = if ci { "npm ci" } else { "npm install" };
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("cannot run {}: {error}", npm.display())),
        Err(_) => {
            return Err(format!(
                "{what} took longer than {} s and was stopped",
                INSTALL_TIMEOUT.as_secs()
            ))
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let text = text.trim();
    let shown = match text.char_indices().nth(OUTPUT_SHOWN) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    Err(format!("{what} failed ({}): {shown}", output.status))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;

    fn package(files: &[(&str, &str)]) -> Package {
        let files: BTreeMap<String, Bytes> = files
            .iter()
            .map(|(p, d)| (p.to_string(), Bytes::copy_from_slice(d.as_bytes())))
            .collect();
        Package::from_files(files).unwrap()
    }

    #[test]
    fn only_dependencies_without_node_modules_are_installed() {
        let index = ("index.js", "exports.main = () => 1");
        let deps = ("package.json", r#"{"dependencies": {"ms": "2.1.3"}}"#);
        assert!(needed(&package(&[index, deps])).is_some());
        assert!(needed(&package(&[index, ("package.json", "{}")])).is_none());
        assert!(needed(&package(&[index, deps, ("node_modules/ms/index.js", "")])).is_none());
        let off = ("config.json", r#"{"installDependency": false}"#);
        assert!(needed(&package(&[index, deps, off])).is_none());
    }

    #[test]
    fn the_install_is_named_by_the_manifest_and_the_lockfile() {
        let index = ("index.js", "exports.main = () => 1");
        let deps = ("package.json", r#"{"dependencies": {"ms": "2.1.3"}}"#);
        let other_code = ("index.js", "exports.main = () => 2");
        assert_eq!(
            needed(&package(&[index, deps])),
            needed(&package(&[other_code, deps]))
        );
        let locked = ("package-lock.json", "{}");
        assert_ne!(
            needed(&package(&[index, deps])),
            needed(&package(&[index, deps, locked]))
        );
    }

    #[test]
    fn installs_unused_for_a_month_and_unfinished_ones_are_removed() {
        let modules = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let folder = modules.path().join(name);
            std::fs::create_dir_all(folder.join("node_modules")).unwrap();
            folder
        };
        let recent = make("recent");
        let old = make("old");
        let unfinished = make("abc.installing3");
        let long_ago = std::time::SystemTime::now() - UNUSED_FOR - Duration::from_secs(60);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        remove_unused(modules.path());
        assert!(recent.exists());
        assert!(!old.exists());
        assert!(!unfinished.exists());
        // Using an install again keeps it another month.
        let reused = make("reused");
        std::fs::File::open(&reused)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        mark_used(&reused);
        remove_unused(modules.path());
        assert!(reused.exists());
    }
}
