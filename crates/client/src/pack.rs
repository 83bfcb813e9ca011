//! Packing a function folder into the archive a deploy uploads.
//!
//! The folder is validated here with the same rules the server applies, so a
//! broken `config.json` or a missing handler file is reported before any upload.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cloudlet_core::package::{MAX_FILES, MAX_UNPACKED_BYTES};
use cloudlet_core::{Package, PackageError};

/// Why a function folder could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    // The cause is part of the message rather than a `source`, so that printing
    // the error chain does not repeat it.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: file names must be valid UTF-8", .0.display())]
    NonUtf8Name(PathBuf),
    #[error("the function folder {} is not valid: {error}", dir.display())]
    Invalid { dir: PathBuf, error: PackageError },
}

/// Directory entries that are never part of a function: version control, macOS
/// Finder metadata, and Cloudlet's own data dir (`cloudlet dev .` keeps it inside).
fn skipped(name: &str) -> bool {
    matches!(name, ".git" | ".DS_Store" | ".cloudlet")
}

/// Reads and validates a function folder. `node_modules` is kept: dependencies
/// ship inside the package.
pub fn read_dir_package(dir: &Path) -> Result<Package, PackError> {
    let folder = read_dir_files(dir)?;
    Package::from_parts(folder.files, folder.executables).map_err(|error| PackError::Invalid {
        dir: dir.to_path_buf(),
        error,
    })
}

/// A function folder's files, by package path, and which of them are
/// executable (an HTTP function's `scf_bootstrap`, a compiled server).
pub struct FolderFiles {
    pub files: BTreeMap<String, Bytes>,
    pub executables: BTreeSet<String>,
}

/// The files of a function folder, by package path, before any validation of
/// their content (for callers that add to them, as `cloudlet dev` adds a
/// project's settings to `config.json`). The size limits already hold.
pub fn read_dir_files(dir: &Path) -> Result<FolderFiles, PackError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PackError::Io { path, error }
    };
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    if !meta.is_dir() {
        return Err(PackError::NotADirectory(dir.to_path_buf()));
    }
    let mut walk = Walk {
        files: BTreeMap::new(),
        executables: BTreeSet::new(),
        bytes: 0,
        visited: HashSet::new(),
    };
    walk.dir(dir, "").map_err(|e| match e {
        WalkError::Pack(e) => e,
        WalkError::Limit(error) => PackError::Invalid {
            dir: dir.to_path_buf(),
            error,
        },
    })?;
    Ok(FolderFiles {
        files: walk.files,
        executables: walk.executables,
    })
}

/// Packs a function folder into a deterministic tar.gz, after validating it as
/// the server will (config.json, handler file, size limits).
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, PackError> {
    let package = read_dir_package(dir)?;
    package.to_tar_gz().map_err(|error| PackError::Invalid {
        dir: dir.to_path_buf(),
        error,
    })
}

enum WalkError {
    Pack(PackError),
    Limit(PackageError),
}

impl From<PackError> for WalkError {
    fn from(e: PackError) -> Self {
        WalkError::Pack(e)
    }
}

struct Walk {
    files: BTreeMap<String, Bytes>,
    executables: BTreeSet<String>,
    bytes: u64,
    /// Directories already entered, by canonical path, so a symlink loop ends.
    visited: HashSet<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<(), WalkError> {
        let io_err = |path: &Path, error| PackError::Io {
            path: path.to_path_buf(),
            error,
        };
        let canonical = dir.canonicalize().map_err(|e| io_err(dir, e))?;
        if !self.visited.insert(canonical) {
            return Ok(());
        }
        let mut entries = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_err(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| PackError::NonUtf8Name(path.clone()))?;
            if skipped(&name) {
                continue;
            }
            // Follows symlinks, as `npm link` and pnpm put them in node_modules.
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                // A dangling symlink (such as an editor's lock file) carries no code.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path, e).into()),
            };
            let key = format!("{prefix}{name}");
            if meta.is_dir() {
                self.dir(&path, &format!("{key}/"))?;
            } else if meta.is_file() {
                if self.files.len() >= MAX_FILES {
                    return Err(WalkError::Limit(PackageError::TooManyFiles));
                }
                self.bytes += meta.len();
                if self.bytes > MAX_UNPACKED_BYTES {
                    return Err(WalkError::Limit(PackageError::TooLarge));
                }
                let data = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                if meta.permissions().mode() & 0o111 != 0 {
                    self.executables.insert(key.clone());
                }
                self.files.insert(key, Bytes::from(data));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn packs_a_folder_and_skips_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "index.js",
            "exports.main = (e) => require('left-pad')(e.s, 3)",
        );
        write(root, "config.json", r#"{"timeout": 5}"#);
        write(
            root,
            "node_modules/left-pad/index.js",
            "module.exports = (s) => s",
        );
        write(root, "lib/util.js", "module.exports = 1");
        write(root, ".git/HEAD", "ref: refs/heads/main");
        write(root, ".DS_Store", "junk");
        write(root, "lib/.DS_Store", "junk");
        write(root, ".cloudlet/cloudlet.db", "data");

        let archive = pack_dir(root).unwrap();
        let package = Package::from_archive(&archive).unwrap();
        let paths: Vec<&str> = package.files().keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "config.json",
                "index.js",
                "lib/util.js",
                "node_modules/left-pad/index.js"
            ]
        );
        assert_eq!(package.config().timeout, 5);
        // The archive is deterministic, so an unchanged folder keeps its version.
        assert_eq!(pack_dir(root).unwrap(), archive);
        assert_eq!(read_dir_package(root).unwrap().version(), package.version());
    }

    #[test]
    fn bad_folders_fail_before_upload() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "index.js", "exports.main = () => 1");
        write(root, "config.json", r#"{"timout": 5}"#);
        let err = pack_dir(root).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(err.contains("timout"), "{err}");

        std::fs::write(root.join("config.json"), r#"{"handler": "app.main"}"#).unwrap();
        let err = pack_dir(root).unwrap_err().to_string();
        assert!(err.contains("app.js"), "{err}");

        let missing = root.join("nope");
        assert!(matches!(pack_dir(&missing), Err(PackError::Io { .. })));
        assert!(matches!(
            pack_dir(&root.join("index.js")),
            Err(PackError::NotADirectory(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_dangling_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let shared = tempfile::tempdir().unwrap();
        write(shared.path(), "index.js", "module.exports = 2");
        write(root, "index.js", "exports.main = () => require('shared')");
        std::fs::create_dir(root.join("node_modules")).unwrap();
        std::os::unix::fs::symlink(shared.path(), root.join("node_modules/shared")).unwrap();
        std::os::unix::fs::symlink(root.join("gone"), root.join(".#index.js")).unwrap();
        // A loop back to the root must not recurse forever.
        std::os::unix::fs::symlink(root, root.join("node_modules/self")).unwrap();

        let package = read_dir_package(root).unwrap();
        assert!(package.file("node_modules/shared/index.js").is_some());
        assert!(package.file(".#index.js").is_none());
    }
}
