//! The functions' versions the invoke path runs, kept in memory.
//!
//! The store is the source of truth; this cache spares the invoke path a
//! database read and a package decode per call. A deploy or removal updates
//! the cache right after the store, and tells the engine to retire the
//! instances of versions that are no longer current. Invocations already
//! running hold their own `Arc<DeployedFunction>`, so a deploy never disturbs
//! them. Past versions named by `X-Qualifier` are kept too, a few of them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use cloudlet_core::{EnvId, ErrorCode, FunctionName, Package, VersionId};
use cloudlet_runtime::{DeployedFunction, Engine};
use cloudlet_store::FunctionStore;
use parking_lot::{Mutex, RwLock};

use crate::engines::Engines;
use crate::invoker::{InvokeError, Qualifier};

type Key = (EnvId, FunctionName);

/// Past versions kept decoded: each holds its whole package, and past
/// versions are run rarely (a rollback, a comparison), so a few suffice.
const PAST_VERSIONS_CACHED: usize = 16;

/// A function's version and the engine that runs it, chosen when it was
/// installed.
#[derive(Clone)]
pub(crate) struct Installed {
    pub(crate) function: Arc<DeployedFunction>,
    pub(crate) engine: Arc<dyn Engine>,
}

#[derive(Default)]
pub(crate) struct Registry {
    current: RwLock<HashMap<Key, Installed>>,
    /// Past versions run lately, oldest first.
    past: Mutex<VecDeque<Installed>>,
}

impl Registry {
    /// The version `qualifier` names: the current one, loaded from the store
    /// on first use, or one from the function's history.
    pub(crate) async fn get(
        &self,
        store: &dyn FunctionStore,
        engines: &Engines,
        env: &EnvId,
        name: &FunctionName,
        qualifier: &Qualifier,
    ) -> Result<Installed, InvokeError> {
        let current = self.current(store, engines, env, name).await?;
        match qualifier {
            Qualifier::Latest => Ok(current),
            Qualifier::Version(wanted) if names(&current.function.version, wanted) => Ok(current),
            Qualifier::Version(wanted) => self.past(store, engines, env, name, wanted).await,
        }
    }

    async fn current(
        &self,
        store: &dyn FunctionStore,
        engines: &Engines,
        env: &EnvId,
        name: &FunctionName,
    ) -> Result<Installed, InvokeError> {
        let key = (env.clone(), name.clone());
        if let Some(installed) = self.current.read().get(&key) {
            return Ok(installed.clone());
        }
        let info = store
            .function(env, name)
            .await
            .map_err(InvokeError::storage)?
            .ok_or_else(|| {
                InvokeError::new(
                    ErrorCode::FunctionNotFound,
                    format!("function {name} not found in env {env}"),
                )
            })?;
        let installed = load(store, engines, env, name, &info.current.version).await?;
        // A concurrent deploy may have installed a newer version meanwhile; keep it.
        let mut current = self.current.write();
        Ok(current.entry(key).or_insert(installed).clone())
    }

    async fn past(
        &self,
        store: &dyn FunctionStore,
        engines: &Engines,
        env: &EnvId,
        name: &FunctionName,
        wanted: &str,
    ) -> Result<Installed, InvokeError> {
        let is_wanted = |i: &Installed| {
            let f = &i.function;
            &f.env == env && &f.name == name && names(&f.version, wanted)
        };
        if let Some(installed) = self.past.lock().iter().find(|i| is_wanted(i)) {
            return Ok(installed.clone());
        }
        let version = store
            .version(env, name, wanted)
            .await
            .map_err(InvokeError::storage)?
            .ok_or_else(|| {
                InvokeError::new(
                    ErrorCode::FunctionNotFound,
                    format!(
                        "function {name} in env {env} has no version {wanted} \
                         (its current version and its last {} deployed can be named, \
                         by full or 12-character ID)",
                        cloudlet_store::VERSIONS_KEPT
                    ),
                )
            })?;
        let installed = load(store, engines, env, name, &version.version).await?;
        let mut past = self.past.lock();
        if !past.iter().any(is_wanted) {
            if past.len() == PAST_VERSIONS_CACHED {
                past.pop_front();
            }
            past.push_back(installed.clone());
        }
        Ok(installed)
    }

    pub(crate) fn install(&self, installed: Installed) {
        let function = &installed.function;
        let key = (function.env.clone(), function.name.clone());
        self.current.write().insert(key, installed);
    }

    pub(crate) fn remove(&self, env: &EnvId, name: &FunctionName) {
        self.current.write().remove(&(env.clone(), name.clone()));
        self.past
            .lock()
            .retain(|i| &i.function.env != env || &i.function.name != name);
    }
}

/// Whether `qualifier` names `version`: its full ID or its short form.
fn names(version: &VersionId, qualifier: &str) -> bool {
    version.as_str().eq_ignore_ascii_case(qualifier)
        || version.short().eq_ignore_ascii_case(qualifier)
}

/// Reads and decodes one stored version of a function.
async fn load(
    store: &dyn FunctionStore,
    engines: &Engines,
    env: &EnvId,
    name: &FunctionName,
    version: &VersionId,
) -> Result<Installed, InvokeError> {
    let archive = store
        .package(version)
        .await
        .map_err(InvokeError::storage)?
        .ok_or_else(|| {
            InvokeError::new(
                ErrorCode::SysErr,
                format!("the package of {name} version {version} is missing"),
            )
        })?;
    let package = tokio::task::spawn_blocking(move || Package::from_archive(&archive))
        .await
        .map_err(|e| InvokeError::new(ErrorCode::SysErr, format!("package decoding failed: {e}")))?
        .map_err(|e| {
            InvokeError::new(
                ErrorCode::SysErr,
                format!("the stored package of {name} is unreadable: {e}"),
            )
        })?;
    let function = Arc::new(DeployedFunction::new(
        env.clone(),
        name.clone(),
        Arc::new(package),
    ));
    let engine = engines
        .for_config(&function.config)
        .map_err(|why| InvokeError::new(ErrorCode::InvalidFunctionType, format!("{name}: {why}")))?
        .engine;
    Ok(Installed { function, engine })
}
