//! Temporary objects: what clients upload for a call (the SDK's `cloud.CDN`
//! fields), kept on disk for a while under unguessable names and served by
//! URL to whoever holds it.
//!
//! Each object is two files in its env's folder: the bytes, `NAME`, and
//! their description, `NAME.json` (content type, size, expiry). An upload is
//! written to `.partial-NAME`, renamed into place, and only then described:
//! an object exists once its description does, so a crash mid-upload leaves
//! nothing that can be served, and the next sweep (or the next start)
//! removes what it left. Expired objects are removed by [`TmpObjects::sweep`]
//! and refused before then by [`TmpObjects::get`], whatever the clock did
//! while the server was down.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::{now_unix_ms, EnvId};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// How long a leftover without a description may stay: longer than any
/// upload in progress takes between its rename and its description.
const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// What a stored object is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TmpObject {
    /// 32 hex digits from the operating system's random source.
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// When it stops being served (Unix ms).
    pub expires_at: i64,
}

/// Limits on uploads.
#[derive(Debug, Clone, Copy)]
pub struct TmpLimits {
    /// Largest object.
    pub max_object_bytes: u64,
    /// What one env's objects may hold together.
    pub env_quota_bytes: u64,
    /// How long an object is served.
    pub ttl: Duration,
}

impl Default for TmpLimits {
    fn default() -> Self {
        Self {
            max_object_bytes: 64 * 1024 * 1024,
            env_quota_bytes: 1024 * 1024 * 1024,
            ttl: Duration::from_secs(2 * 3600),
        }
    }
}

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TmpError {
    #[error("the object is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the env's temporary objects would hold more than its quota of {0} bytes")]
    OverQuota(u64),
    #[error("the upload's body could not be read: {0}")]
    Body(String),
    #[error("temporary storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The objects of every env under one folder.
pub struct TmpObjects {
    dir: PathBuf,
    /// Bytes each env's objects hold, uploads in progress included.
    held: Mutex<HashMap<EnvId, u64>>,
}

impl TmpObjects {
    /// Opens (creating) the folder, removes what expired or was left
    /// half-written, and counts what each env holds.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let objects = Self {
            dir: dir.to_owned(),
            held: Mutex::default(),
        };
        objects.sweep_now(true)?;
        Ok(objects)
    }

    /// Stores `body` for `env` and describes it; refuses it past the
    /// object limit or the env's quota, keeping nothing of it.
    pub async fn put<S, E>(
        &self,
        env: &EnvId,
        content_type: &str,
        mut body: S,
        limits: TmpLimits,
    ) -> Result<TmpObject, TmpError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let folder = self.dir.join(env.as_str());
        tokio::fs::create_dir_all(&folder).await?;
        let name = hex::encode(rand::random::<[u8; 16]>());
        let partial = folder.join(format!(".partial-{name}"));
        let mut reservation = Reservation {
            objects: self,
            env,
            bytes: 0,
            kept: false,
        };
        let written = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| TmpError::Body(e.to_string()))?;
                reservation.grow(chunk.len() as u64, limits)?;
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok::<_, TmpError>(())
        }
        .await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        let object = TmpObject {
            name: name.clone(),
            content_type: content_type.to_owned(),
            size: reservation.bytes,
            expires_at: now_unix_ms() + limits.ttl.as_millis() as i64,
        };
        tokio::fs::rename(&partial, folder.join(&name)).await?;
        let description = serde_json::to_vec(&object).map_err(std::io::Error::other)?;
        tokio::fs::write(folder.join(format!("{name}.json")), description).await?;
        reservation.keep();
        Ok(object)
    }

    /// An object that has not expired, with its bytes opened for reading.
    pub async fn get(
        &self,
        env: &EnvId,
        name: &str,
    ) -> std::io::Result<Option<(TmpObject, tokio::fs::File)>> {
        // Only names this module makes: no path can be smuggled in.
        if name.len() != 32 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let folder = self.dir.join(env.as_str());
        let description = match tokio::fs::read(folder.join(format!("{name}.json"))).await {
            Ok(description) => description,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let object: TmpObject =
            serde_json::from_slice(&description).map_err(std::io::Error::other)?;
        if object.expires_at <= now_unix_ms() {
            return Ok(None);
        }
        match tokio::fs::File::open(folder.join(name)).await {
            Ok(file) => Ok(Some((object, file))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Removes expired objects and what crashed uploads left; off the async
    /// workers, since a folder may hold many files.
    pub async fn sweep(self: &std::sync::Arc<Self>) -> std::io::Result<()> {
        let objects = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || objects.sweep_now(false))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The sweep; at open, when nothing is being written, it also removes
    /// every leftover and recounts what each env holds.
    fn sweep_now(&self, at_open: bool) -> std::io::Result<()> {
        let now = now_unix_ms();
        let mut counted: HashMap<EnvId, u64> = HashMap::new();
        for env_folder in std::fs::read_dir(&self.dir)? {
            let env_folder = env_folder?;
            let Ok(env) = EnvId::parse(env_folder.file_name().to_string_lossy().into_owned())
            else {
                continue;
            };
            let swept = sweep_folder(&env_folder.path(), now, at_open)?;
            if at_open {
                counted.insert(env, swept.kept);
            } else if swept.freed > 0 {
                if let Some(bytes) = self.held.lock().get_mut(&env) {
                    *bytes = bytes.saturating_sub(swept.freed);
                }
            }
        }
        if at_open {
            *self.held.lock() = counted;
        }
        Ok(())
    }

    /// Bytes an env's objects hold now.
    pub fn held(&self, env: &EnvId) -> u64 {
        self.held.lock().get(env).copied().unwrap_or(0)
    }
}

/// What a sweep of one env's folder kept and freed, in bytes.
#[derive(Default)]
struct Swept {
    kept: u64,
    freed: u64,
}

/// Removes an env's expired objects, and leftovers without a description
/// (all of them at open; later, only those older than [`ORPHAN_AGE`]).
fn sweep_folder(folder: &Path, now: i64, at_open: bool) -> std::io::Result<Swept> {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut swept = Swept::default();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(name) = file_name.strip_suffix(".json") {
            let data = folder.join(name);
            let live = std::fs::read(&path)
                .ok()
                .and_then(|d| serde_json::from_slice::<TmpObject>(&d).ok())
                .is_some_and(|object| object.expires_at > now);
            if live {
                swept.kept += size(&data);
            } else {
                swept.freed += size(&data);
                let _ = std::fs::remove_file(&data);
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        let described = folder.join(format!("{file_name}.json")).exists();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_AGE);
        if !described && (at_open || old) {
            swept.freed += size(&path);
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(swept)
}

/// An upload's share of its env's quota, given back unless the upload is kept.
struct Reservation<'a> {
    objects: &'a TmpObjects,
    env: &'a EnvId,
    bytes: u64,
    kept: bool,
}

impl Reservation<'_> {
    fn grow(&mut self, more: u64, limits: TmpLimits) -> Result<(), TmpError> {
        if self.bytes + more > limits.max_object_bytes {
            return Err(TmpError::TooLarge(limits.max_object_bytes));
        }
        let mut held = self.objects.held.lock();
        let env_held = held.entry(self.env.clone()).or_default();
        if *env_held + more > limits.env_quota_bytes {
            return Err(TmpError::OverQuota(limits.env_quota_bytes));
        }
        *env_held += more;
        self.bytes += more;
        Ok(())
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept || self.bytes == 0 {
            return;
        }
        if let Some(held) = self.objects.held.lock().get_mut(self.env) {
            *held = held.saturating_sub(self.bytes);
        }
    }
}
