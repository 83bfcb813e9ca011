//! The current version of every function, kept in memory.
//!
//! The store is the source of truth; this cache spares the invoke path a
//! database read and a package decode per call. A deploy or removal updates
//! the cache right after the store, and tells the engine to retire the
//! instances of versions that are no longer current. Invocations already
//! running hold their own `Arc<DeployedFunction>`, so a deploy never disturbs
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use cloudlet_core::{EnvId, ErrorCode, FunctionName, Package};
use cloudlet_runtime::{DeployedFunction, Engine};
use cloudlet_store::FunctionStore;
use parking_lot::RwLock;

use crate::engines::Engines;
use crate::invoker::InvokeError;

type Key = (EnvId, FunctionName);

/// A function's current version and the engine that runs it, chosen when it
/// was installed.
#[derive(Clone)]
pub(crate) struct Installed {
    pub(crate) function: Arc<DeployedFunction>,
    pub(crate) engine: Arc<dyn Engine>,
}

#[derive(Default)]
pub(crate) struct Registry {
    current: RwLock<HashMap<Key, Installed>>,
}

impl Registry {
    /// The function's current version, loaded from the store on first use.
    pub(crate) async fn get(
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
        let not_found = || {
            InvokeError::new(
                ErrorCode::FunctionNotFound,
                format!("function {name} not found in env {env}"),
            )
        };
        let info = store
            .function(env, name)
            .await
            .map_err(InvokeError::storage)?
            .ok_or_else(not_found)?;
        let archive = store
            .package(&info.current.version)
            .await
            .map_err(InvokeError::storage)?
            .ok_or_else(|| {
                InvokeError::new(
                    ErrorCode::SysErr,
                    format!(
                        "the package of {name} version {} is missing",
                        info.current.version
                    ),
                )
            })?;
        let package = tokio::task::spawn_blocking(move || Package::from_archive(&archive))
            .await
            .map_err(|e| {
                InvokeError::new(ErrorCode::SysErr, format!("package decoding failed: {e}"))
            })?
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
        let engine = engines.for_runtime(&function.config.runtime).engine;
        // A concurrent deploy may have installed a newer version meanwhile; keep it.
        let mut current = self.current.write();
        Ok(current
            .entry(key)
            .or_insert(Installed { function, engine })
            .clone())
    }

    pub(crate) fn install(&self, installed: Installed) {
        let function = &installed.function;
        let key = (function.env.clone(), function.name.clone());
        self.current.write().insert(key, installed);
    }

    pub(crate) fn remove(&self, env: &EnvId, name: &FunctionName) {
        self.current.write().remove(&(env.clone(), name.clone()));
    }
}
