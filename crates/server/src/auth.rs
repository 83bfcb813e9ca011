//! Who may do what: decisions on a credential a protocol router has already
//! extracted from its request.
//!
//! A loopback listener needs no key: only this machine can reach it, as with
//! any local development server. Any other listener needs an admin key (the
//! server refuses to start without one, see [`AuthPolicy::for_listener`]); the
//! admin key may do everything, an env key may invoke that env's functions and
//! read its records, and an env's publishable key may only invoke and upload
//! temporary objects (web pages carry it, where anyone can read it).

use std::collections::HashMap;
use std::net::SocketAddr;

use cloudlet_core::{EnvId, ErrorCode};
use cloudlet_store::FunctionStore;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::invoker::InvokeError;

/// What a request presented as its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    /// A bearer key (`Authorization: Bearer <key>` on the native API).
    Key(String),
}

#[derive(Debug)]
pub enum AuthPolicy {
    /// Loopback without an admin key: everything is allowed.
    Open,
    /// Keys are required.
    Keys {
        admin_key_hash: [u8; 32],
        /// Env keys already checked against the store, by env: the SHA-256 of the key.
        /// Cleared for an env when its key is reissued.
        verified_env_keys: RwLock<HashMap<EnvId, [u8; 32]>>,
        /// The same for publishable keys.
        verified_publishable_keys: RwLock<HashMap<EnvId, [u8; 32]>>,
    },
}

/// What an env's access allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything the env's key allows: invoking, uploading, reading its
    /// records and settings.
    Full,
    /// A publishable key's (or a public route's): invoking and uploading
    /// temporary objects, nothing that reads what the env holds. Web pages
    /// carry these keys, where anyone can read them.
    InvokeAndUpload,
}

/// Proof that a request may use an env: made only by [`AuthPolicy::authorize`],
/// and required by [`crate::invoker::Invoker::invoke`].
#[derive(Debug, Clone)]
pub struct Access {
    env: EnvId,
    scope: Scope,
}

impl Access {
    /// The access of a function's call into `env`, which the invocation
    /// service decided (`invoker/chain.rs`): the caller was authorized when
    /// its own invocation began, and its env may call `env`.
    pub(crate) fn for_caller(env: EnvId) -> Self {
        Self {
            env,
            scope: Scope::Full,
        }
    }

    /// The access of a request on a public route of the access service: its
    /// owner made the route's function callable by anyone.
    pub(crate) fn for_public_route(env: EnvId) -> Self {
        Self {
            env,
            scope: Scope::InvokeAndUpload,
        }
    }

    pub fn env(&self) -> &EnvId {
        &self.env
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn denied(message: &str) -> InvokeError {
    InvokeError::new(ErrorCode::PermissionDenied, message)
}

impl AuthPolicy {
    /// Chooses the policy for a listener, or refuses: a listener other than
    /// loopback without an admin key would expose deploys to the network.
    pub fn for_listener(addr: SocketAddr, admin_key: Option<&str>) -> Result<Self, String> {
        match admin_key.filter(|k| !k.is_empty()) {
            Some(key) => Ok(AuthPolicy::Keys {
                admin_key_hash: hash(key),
                verified_env_keys: RwLock::default(),
                verified_publishable_keys: RwLock::default(),
            }),
            None if addr.ip().is_loopback() => Ok(AuthPolicy::Open),
            None => Err(format!(
                "refusing to listen on {addr} without an admin key: set --admin-key or CLOUDLET_ADMIN_KEY, or listen on 127.0.0.1"
            )),
        }
    }

    fn is_admin(&self, credential: &Credential) -> bool {
        match (self, credential) {
            (AuthPolicy::Open, _) => true,
            (AuthPolicy::Keys { admin_key_hash, .. }, Credential::Key(key)) => {
                hash(key) == *admin_key_hash
            }
            (AuthPolicy::Keys { .. }, Credential::None) => false,
        }
    }

    pub(crate) fn require_admin(&self, credential: &Credential) -> Result<(), InvokeError> {
        match credential {
            _ if self.is_admin(credential) => Ok(()),
            Credential::None => Err(denied(
                "this operation needs the admin key in Authorization: Bearer",
            )),
            Credential::Key(_) => Err(denied("the key is not the admin key")),
        }
    }

    /// Allows the admin key, `env`'s own key, or its publishable key (with
    /// [`Scope::InvokeAndUpload`]).
    pub(crate) async fn authorize(
        &self,
        store: &dyn FunctionStore,
        env: &EnvId,
        credential: &Credential,
    ) -> Result<Access, InvokeError> {
        let full = Access {
            env: env.clone(),
            scope: Scope::Full,
        };
        if matches!(self, AuthPolicy::Open) || self.is_admin(credential) {
            return Ok(full);
        }
        let Credential::Key(key) = credential else {
            return Err(denied(
                "invoking needs the env's key or the admin key in Authorization: Bearer",
            ));
        };
        self.env_key(store, env, key).await
    }

    /// The check of a route that requires a key: the admin key or one of
    /// `env`'s, also on a loopback server without an admin key, where
    /// [`AuthPolicy::authorize`] lets every request through. A route that
    /// says it needs a key needs one wherever it is served (`--access-listen`
    /// may face the network).
    pub(crate) async fn authorize_key(
        &self,
        store: &dyn FunctionStore,
        env: &EnvId,
        credential: &Credential,
    ) -> Result<Access, InvokeError> {
        if let AuthPolicy::Keys { .. } = self {
            return self.authorize(store, env, credential).await;
        }
        let Credential::Key(key) = credential else {
            return Err(denied(
                "this route needs the env's key in Authorization: Bearer",
            ));
        };
        self.env_key(store, env, key).await
    }

    /// The access one of `env`'s keys gives: its own key (`ck_…`) or its
    /// publishable key (`pk_…`), checked against the store once and then
    /// remembered by hash until the env's keys are reissued.
    async fn env_key(
        &self,
        store: &dyn FunctionStore,
        env: &EnvId,
        key: &str,
    ) -> Result<Access, InvokeError> {
        let scope = if key.starts_with(cloudlet_store::PUBLISHABLE_KEY_PREFIX) {
            Scope::InvokeAndUpload
        } else {
            Scope::Full
        };
        let access = Access {
            env: env.clone(),
            scope,
        };
        let verified = self.verified_keys(scope);
        let key_hash = hash(key);
        if verified.is_some_and(|known| known.read().get(env) == Some(&key_hash)) {
            return Ok(access);
        }
        let valid = match scope {
            Scope::Full => store.check_env_key(env, key).await,
            Scope::InvokeAndUpload => store.check_publishable_key(env, key).await,
        }
        .map_err(InvokeError::storage)?;
        if !valid {
            return Err(denied("the key is not valid for this env"));
        }
        if let Some(known) = verified {
            known.write().insert(env.clone(), key_hash);
        }
        Ok(access)
    }

    /// The keys of `scope`'s kind already checked against the store, by env.
    fn verified_keys(&self, scope: Scope) -> Option<&RwLock<HashMap<EnvId, [u8; 32]>>> {
        match self {
            AuthPolicy::Keys {
                verified_env_keys,
                verified_publishable_keys,
                ..
            } => Some(match scope {
                Scope::Full => verified_env_keys,
                Scope::InvokeAndUpload => verified_publishable_keys,
            }),
            AuthPolicy::Open => None,
        }
    }

    /// Forgets `env`'s keys as checked, after one of them was reissued.
    pub(crate) fn forget_env_keys(&self, env: &EnvId) {
        if let AuthPolicy::Keys {
            verified_env_keys,
            verified_publishable_keys,
            ..
        } = self
        {
            verified_env_keys.write().remove(env);
            verified_publishable_keys.write().remove(env);
        }
    }
}
