//! A function's folder on disk, written from its package, for the engines
//! that run function code in processes of their own (node, http).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cloudlet_core::Package;

/// Writes `package` to `target` (to a staging folder renamed into place, so
/// a half-written folder is never used), executables with their bit, each
/// file's content as `content` gives it, and links `modules` in as
/// `node_modules`.
pub(crate) fn write_package(
    package: &Package,
    modules: Option<&Path>,
    target: &Path,
    content: impl Fn(&str, &Bytes) -> Bytes,
) -> std::io::Result<()> {
    let staging = unique_sibling(target, "tmp");
    let _ = std::fs::remove_dir_all(&staging);
    for (path, bytes) in package.files() {
        let file = staging.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, content(path, bytes))?;
        if package.is_executable(path) {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    std::fs::create_dir_all(&staging)?;
    if let Some(modules) = modules {
        std::os::unix::fs::symlink(modules, staging.join("node_modules"))?;
    }
    match std::fs::rename(&staging, target) {
        Ok(()) => Ok(()),
        // Written meanwhile by a concurrent first invocation: theirs stays.
        Err(_) if target.exists() => std::fs::remove_dir_all(&staging),
        Err(error) => Err(error),
    }
}

/// A new name beside `path` that is no version ID (so the cleanup leaves it
/// alone), unique in this process: concurrent first invocations of a
/// version each write their own copy, and one of them is renamed into place.
pub(crate) fn unique_sibling(path: &Path, what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_extension(format!("{what}{n}"))
}
