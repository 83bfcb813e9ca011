//! Package archives as files, `packages/<version>.pkg`.
//!
//! Archives can be megabytes; keeping them out of SQLite keeps the database
//! (and its WAL) small and lets a read be one `read` of a file. A file only ever
//! appears under its final name by `rename` from a synced temporary file in the
//! same directory, so a crash leaves either the whole archive or nothing (plus a
//! stray `.tmp` that the next open removes).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use cloudlet_core::VersionId;

use crate::{Result, StoreError};

const EXTENSION: &str = "pkg";
const TEMP_EXTENSION: &str = "tmp";

pub(super) struct PackageDir {
    dir: PathBuf,
}

/// An archive written under a temporary name, removed on drop unless placed.
pub(super) struct Staged {
    path: Option<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl PackageDir {
    pub(super) fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self { dir })
    }

    pub(super) fn path(&self, version: &VersionId) -> PathBuf {
        self.dir.join(format!("{version}.{EXTENSION}"))
    }

    /// Writes the archive under a temporary name, synced, ready to be renamed.
    pub(super) fn stage(&self, version: &VersionId, archive: &[u8]) -> Result<Staged> {
        let nonce: u64 = rand::random();
        let path = self
            .dir
            .join(format!(".{version}.{nonce:016x}.{TEMP_EXTENSION}"));
        let staged = Staged {
            path: Some(path.clone()),
        };
        let write = || -> std::io::Result<()> {
            let mut file = File::create_new(&path)?;
            file.write_all(archive)?;
            file.sync_all()
        };
        write().map_err(|e| StoreError(format!("cannot write {}: {e}", path.display())))?;
        Ok(staged)
    }

    /// Makes sure the version's file exists, moving `staged` into place or
    /// writing the archive now. Returns true when this call created the file.
    pub(super) fn place(
        &self,
        version: &VersionId,
        staged: Option<Staged>,
        archive: &[u8],
    ) -> Result<bool> {
        let target = self.path(version);
        if target.exists() {
            return Ok(false);
        }
        let mut staged = match staged {
            Some(staged) => staged,
            // The file vanished between the caller's check and now (a removal
            // of the last function using it), so write it again.
            None => self.stage(version, archive)?,
        };
        let Some(temp) = staged.path.take() else {
            return Err(StoreError("staged package has no path".into()));
        };
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(StoreError(format!(
                "cannot move the package into {}: {e}",
                target.display()
            )));
        }
        self.sync_dir();
        Ok(true)
    }

    /// Reads a version's archive; `None` when there is no file.
    pub(super) fn read(&self, version: &VersionId) -> Result<Option<Vec<u8>>> {
        let path = self.path(version);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Removes a version's archive; a missing file is not an error.
    pub(super) fn remove(&self, version: &str) {
        let path = self.dir.join(format!("{version}.{EXTENSION}"));
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an unused package")
            }
        }
    }

    /// Removes leftovers of interrupted writes, and archives whose version row
    /// is gone (a crash between deleting the row and the file, or between
    /// placing the file and committing its row).
    pub(super) fn sweep(&self, is_known: impl Fn(&str) -> Result<bool>) -> Result<()> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| StoreError(format!("cannot list {}: {e}", self.dir.display())))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| StoreError(format!("cannot list {}: {e}", self.dir.display())))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stale = if name.ends_with(&format!(".{TEMP_EXTENSION}")) && name.starts_with('.') {
                true
            } else if let Some(version) = name.strip_suffix(&format!(".{EXTENSION}")) {
                VersionId::parse(version).is_ok() && !is_known(version)?
            } else {
                false
            };
            if stale {
                if let Err(e) = fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale package file");
                }
            }
        }
        Ok(())
    }

    /// Makes a rename or removal durable. Best effort: the rename itself is
    /// already atomic, this only orders it before later writes on power loss.
    fn sync_dir(&self) {
        #[cfg(unix)]
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }
}
