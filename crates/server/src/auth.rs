//! Who may do what.
//!
//! A loopback listener needs no key: only this machine can reach it, as with
//! any local development server. Any other listener needs an admin key (the
//! server refuses to start without one, see [`AuthPolicy::for_listener`]); the
//! admin key may do everything, an env key may invoke that env's functions and
//! read its records.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use cloudlet_core::{EnvId, ErrorCode};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::App;

#[derive(Debug)]
pub enum AuthPolicy {
    /// Loopback without an admin key: everything is allowed.
    Open,
    /// Keys are required.
    Keys {
        admin_key_hash: [u8; 32],
        /// Env keys already checked against the store, by env: the SHA-256 of the key.
        /// Cleared for an env when its key is reissued.
        verified_env_keys: RwLock<std::collections::HashMap<EnvId, [u8; 32]>>,
    },
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The credential of `Authorization: Bearer <key>`; the scheme is matched
/// without regard to case, as HTTP's auth schemes are (RFC 9110, 11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

fn denied(message: &str) -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, message)
}

impl AuthPolicy {
    /// Chooses the policy for a listener, or refuses: a listener other than
    /// loopback without an admin key would expose deploys to the network.
    pub fn for_listener(addr: SocketAddr, admin_key: Option<&str>) -> Result<Self, String> {
        match admin_key.filter(|k| !k.is_empty()) {
            Some(key) => Ok(AuthPolicy::Keys {
                admin_key_hash: hash(key),
                verified_env_keys: RwLock::default(),
            }),
            None if addr.ip().is_loopback() => Ok(AuthPolicy::Open),
            None => Err(format!(
                "refusing to listen on {addr} without an admin key: set --admin-key or CLOUDLET_ADMIN_KEY, or listen on 127.0.0.1"
            )),
        }
    }

    fn is_admin(&self, headers: &HeaderMap) -> bool {
        match self {
            AuthPolicy::Open => true,
            AuthPolicy::Keys { admin_key_hash, .. } => {
                bearer(headers).is_some_and(|k| hash(k) == *admin_key_hash)
            }
        }
    }

    pub(crate) fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.is_admin(headers) {
            Ok(())
        } else if bearer(headers).is_none() {
            Err(denied(
                "this operation needs the admin key in Authorization: Bearer",
            ))
        } else {
            Err(denied("the key is not the admin key"))
        }
    }

    pub(crate) fn forget_env_key(&self, env: &EnvId) {
        if let AuthPolicy::Keys {
            verified_env_keys, ..
        } = self
        {
            verified_env_keys.write().remove(env);
        }
    }
}

/// Allows the admin key or `env`'s own key.
pub(crate) async fn require_env_access(
    app: &App,
    headers: &HeaderMap,
    env: &EnvId,
) -> Result<(), ApiError> {
    let AuthPolicy::Keys {
        verified_env_keys, ..
    } = &app.auth
    else {
        return Ok(());
    };
    if app.auth.is_admin(headers) {
        return Ok(());
    }
    let Some(key) = bearer(headers) else {
        return Err(denied(
            "invoking needs the env's key or the admin key in Authorization: Bearer",
        ));
    };
    let key_hash = hash(key);
    if verified_env_keys.read().get(env) == Some(&key_hash) {
        return Ok(());
    }
    let valid = app
        .functions
        .check_env_key(env, key)
        .await
        .map_err(ApiError::storage)?;
    if valid {
        verified_env_keys.write().insert(env.clone(), key_hash);
        Ok(())
    } else {
        Err(denied("the key is not valid for this env"))
    }
}

/// The admin key, checked on the request's headers: as an extractor it runs
/// before the body is read, so a request without the key is refused before
/// its client uploads anything (and `Expect: 100-continue` is never answered).
pub(crate) struct Admin;

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        app.auth
            .require_admin(&parts.headers)
            .map_err(|e| e.with_request_id_of(&parts.headers))?;
        Ok(Admin)
    }
}

/// The env of the route (`{env}` in its path, else the default env), which
/// the request's key may use: the admin key or the env's own. Like [`Admin`],
/// checked before the body is read.
pub(crate) struct EnvAccess(pub EnvId);

impl FromRequestParts<Arc<App>> for EnvAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
        let env = match params.iter().find(|(key, _)| *key == "env") {
            Some((_, env)) => EnvId::parse(env.to_owned())
                .map_err(|e| ApiError::new(ErrorCode::InvalidEnv, e.to_string()))?,
            None => EnvId::default_env(),
        };
        require_env_access(app, &parts.headers, &env)
            .await
            .map_err(|e| e.with_request_id_of(&parts.headers))?;
        Ok(EnvAccess(env))
    }
}
