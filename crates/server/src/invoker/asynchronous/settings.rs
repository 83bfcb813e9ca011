//! Each function's asynchronous settings as they apply: its own (set by the
//! API, kept in the function store) over its version's `config.json`
//! defaults over the built-in ones.
//!
//! The worker needs them after every attempt, so a function's own settings
//! are read from the store once and kept here; this server's API changes
//! them through [`Invoker::set_async_config`], which updates the copy, and
//! removing the function forgets it.

use std::collections::HashMap;

use cloudlet_core::{AsyncConfig, EnvId, ErrorCode, FunctionName};
use parking_lot::Mutex;

use crate::invoker::{InvokeError, Invoker, Target};

type Key = (EnvId, FunctionName);

/// Functions' own settings, as read from the store (`None`: none set).
#[derive(Default)]
pub(crate) struct OwnSettings {
    known: Mutex<HashMap<Key, Option<AsyncConfig>>>,
}

impl OwnSettings {
    pub(crate) fn forget(&self, env: &EnvId, name: &FunctionName) {
        self.known.lock().remove(&(env.clone(), name.clone()));
    }
}

/// What applies to a function, and where each part came from.
pub(crate) struct AppliedSettings {
    /// Set by the API, if anything was.
    pub(crate) own: Option<AsyncConfig>,
    /// The current version's `config.json` defaults.
    pub(crate) defaults: AsyncConfig,
    /// Every field filled in.
    pub(crate) effective: AsyncConfig,
}

impl Invoker {
    /// The settings that apply to `name` in `env`, whose version's
    /// `config.json` gives `defaults`.
    pub(crate) async fn async_settings(
        &self,
        env: &EnvId,
        name: &FunctionName,
        defaults: &AsyncConfig,
    ) -> Result<AsyncConfig, InvokeError> {
        Ok(self.own_settings(env, name).await?.map_or_else(
            || defaults.effective(),
            |own| own.over(defaults).effective(),
        ))
    }

    /// What applies to the target function now, for the API.
    pub(crate) async fn applied_settings(
        &self,
        target: &Target,
    ) -> Result<AppliedSettings, InvokeError> {
        let installed = self.resolve(target).await?;
        let env = target.access.env();
        let own = self.own_settings(env, &target.name).await?;
        let defaults = installed.function.config.async_defaults();
        let effective = own
            .as_ref()
            .map_or_else(|| defaults.clone(), |own| own.over(&defaults))
            .effective();
        Ok(AppliedSettings {
            own,
            defaults,
            effective,
        })
    }

    /// Sets (or with `None` clears) the target function's own settings,
    /// once they are in range and name destinations that exist in its env.
    pub(crate) async fn set_async_config(
        &self,
        target: &Target,
        config: Option<AsyncConfig>,
    ) -> Result<AppliedSettings, InvokeError> {
        let env = target.access.env();
        if let Some(config) = &config {
            config
                .validate()
                .map_err(|why| InvokeError::new(ErrorCode::InvalidParam, why))?;
            for destination in [&config.on_success, &config.on_failure]
                .into_iter()
                .flatten()
            {
                self.destination_exists(env, destination).await?;
            }
        }
        let set = self
            .functions
            .set_async_config(env, &target.name, config.as_ref())
            .await
            .map_err(InvokeError::storage)?;
        if !set {
            return Err(InvokeError::new(
                ErrorCode::FunctionNotFound,
                format!("function {} not found in env {env}", target.name),
            ));
        }
        let key = (env.clone(), target.name.clone());
        self.own_async_settings.known.lock().insert(key, config);
        self.applied_settings(target).await
    }

    async fn destination_exists(
        &self,
        env: &EnvId,
        name: &FunctionName,
    ) -> Result<(), InvokeError> {
        let found = self
            .functions
            .function(env, name)
            .await
            .map_err(InvokeError::storage)?;
        match found {
            Some(_) => Ok(()),
            None => Err(InvokeError::new(
                ErrorCode::InvalidParam,
                format!("the destination {name} is no function of env {env}"),
            )),
        }
    }

    async fn own_settings(
        &self,
        env: &EnvId,
        name: &FunctionName,
    ) -> Result<Option<AsyncConfig>, InvokeError> {
        let key = (env.clone(), name.clone());
        if let Some(known) = self.own_async_settings.known.lock().get(&key) {
            return Ok(known.clone());
        }
        let stored = self
            .functions
            .async_config(env, name)
            .await
            .map_err(InvokeError::storage)?;
        self.own_async_settings
            .known
            .lock()
            .insert(key, stored.clone());
        Ok(stored)
    }
}
