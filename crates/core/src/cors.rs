//! An env's CORS settings: which web origins may call its functions from a
//! browser (CloudBase's "security domains"), with which methods and headers.

use serde::{Deserialize, Serialize};

/// Methods allowed when the settings name none.
const DEFAULT_METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
/// Seconds a browser may cache a preflight's answer when the settings say nothing.
const DEFAULT_MAX_AGE_S: u32 = 600;
/// The longest cache a browser honours (Firefox's cap).
const MAX_MAX_AGE_S: u32 = 86_400;

/// Why CORS settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CORS settings: {0}")]
pub struct CorsError(String);

/// An env's CORS settings, as `PUT /v1/envs/{env}/cors` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsSettings {
    /// `https://example.com`, `http://localhost:3000`, `https://*.example.com`
    /// (any subdomain), or `*` (any origin, not with credentials).
    pub allowed_origins: Vec<String>,
    /// Methods a page may use; empty means GET, POST, PUT, PATCH, DELETE, HEAD.
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    /// Request headers a page may send; empty means whatever it asks for.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Whether a page may send cookies and `Authorization` with its requests.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight's answer (default 600, at most 86400).
    #[serde(default)]
    pub max_age_seconds: Option<u32>,
}

impl CorsSettings {
    /// Refuses settings a browser could not use or that would allow more than meant.
    pub fn validate(&self) -> Result<(), CorsError> {
        if self.allowed_origins.is_empty() {
            return Err(CorsError("allowedOrigins names no origin".into()));
        }
        for origin in &self.allowed_origins {
            if origin == "*" {
                if self.allow_credentials {
                    return Err(CorsError(
                        "allowedOrigins \"*\" cannot go with allowCredentials; name the origins"
                            .into(),
                    ));
                }
                continue;
            }
            valid_origin(origin).map_err(|why| CorsError(format!("origin {origin:?}: {why}")))?;
        }
        for method in &self.allowed_methods {
            let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
            if !token {
                return Err(CorsError(format!("{method:?} is not an HTTP method")));
            }
        }
        for header in &self.allowed_headers {
            if http_header_name(header).is_none() {
                return Err(CorsError(format!("{header:?} is not a header name")));
            }
        }
        if self.max_age_seconds.is_some_and(|s| s > MAX_MAX_AGE_S) {
            return Err(CorsError(format!(
                "maxAgeSeconds is at most {MAX_MAX_AGE_S}"
            )));
        }
        Ok(())
    }

    /// Whether a page from `origin` (an `Origin` header) may call.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| origin_matches(allowed, origin))
    }

    /// Whether a page may use `method` (case as sent, compared without case).
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods()
            .any(|allowed| allowed.eq_ignore_ascii_case(method))
    }

    /// The methods a preflight's answer lists.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        let named = self.allowed_methods.iter().map(String::as_str);
        let defaults = DEFAULT_METHODS
            .iter()
            .copied()
            .filter(|_| self.allowed_methods.is_empty());
        named.chain(defaults)
    }

    /// Whether `origin` may be answered with `*` rather than by name.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    pub fn max_age(&self) -> u32 {
        self.max_age_seconds.unwrap_or(DEFAULT_MAX_AGE_S)
    }
}

/// `scheme://host[:port]`, nothing after it: the form of an `Origin` header,
/// where the host may start with `*.`.
fn valid_origin(origin: &str) -> Result<(), &'static str> {
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("it must be scheme://host[:port]")?;
    if scheme != "http" && scheme != "https" {
        return Err("the scheme must be http or https");
    }
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => rest,
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err("the host must be a name or an address, with nothing after the port")
    }
}

/// Whether `origin` is `allowed`, which may be `*` or have a `*.` host.
fn origin_matches(allowed: &str, origin: &str) -> bool {
    if allowed == "*" {
        return true;
    }
    let Some((scheme, rest)) = allowed.split_once("://") else {
        return false;
    };
    match rest.strip_prefix("*.") {
        // `https://*.example.com` is any subdomain of it, not the domain itself.
        Some(suffix) => origin
            .strip_prefix(scheme)
            .and_then(|o| o.strip_prefix("://"))
            .and_then(|host| host.strip_suffix(suffix))
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => allowed.eq_ignore_ascii_case(origin),
    }
}

/// The header name in the form `http` takes (RFC 9110 token characters).
fn http_header_name(name: &str) -> Option<&str> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    (!name.is_empty() && name.bytes().all(token)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str]) -> CorsSettings {
        CorsSettings {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_methods: Vec::new(),
            allowed_headers: Vec::new(),
            allow_credentials: false,
            max_age_seconds: None,
        }
    }

    #[test]
    fn an_origin_is_allowed_by_name_by_subdomain_or_by_star() {
        let s = settings(&[
            "https://app.example.com",
            "https://*.example.org",
            "http://localhost:3000",
        ]);
        assert!(s.allows_origin("https://app.example.com"));
        assert!(s.allows_origin("https://a.b.example.org"));
        assert!(
            !s.allows_origin("https://example.org"),
            "the domain itself is not a subdomain"
        );
        assert!(!s.allows_origin("https://evilexample.org"));
        assert!(!s.allows_origin("http://app.example.com"), "another scheme");
        assert!(s.allows_origin("http://localhost:3000"));
        assert!(!s.allows_origin("http://localhost:3001"));
        assert!(settings(&["*"]).allows_origin("https://anything.test"));
    }

    #[test]
    fn settings_a_browser_could_not_use_are_refused() {
        assert!(settings(&[]).validate().is_err());
        assert!(settings(&["example.com"]).validate().is_err());
        assert!(settings(&["https://example.com/path"]).validate().is_err());
        assert!(settings(&["ftp://example.com"]).validate().is_err());
        let mut star_with_credentials = settings(&["*"]);
        star_with_credentials.allow_credentials = true;
        assert!(star_with_credentials.validate().is_err());
        let mut bad_method = settings(&["https://example.com"]);
        bad_method.allowed_methods = vec!["GET POST".into()];
        assert!(bad_method.validate().is_err());
        assert!(
            settings(&["https://example.com:8443", "https://*.example.com"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn methods_default_to_the_common_ones() {
        let s = settings(&["*"]);
        assert!(s.allows_method("post"));
        assert!(!s.allows_method("TRACE"));
        let mut only_post = settings(&["*"]);
        only_post.allowed_methods = vec!["POST".into()];
        assert!(only_post.allows_method("POST"));
        assert!(!only_post.allows_method("GET"));
    }
}
