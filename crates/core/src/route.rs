//! Routes of the HTTP access service: a host (or any host) and a path prefix
//! that lead to one function, as CloudBase's "HTTP 访问服务" maps a domain and
//! a trigger path to a cloud function.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{EnvId, FunctionName};

/// The longest path prefix a route may have.
const MAX_PREFIX_BYTES: usize = 256;
/// The longest host name (RFC 1035).
const MAX_HOST_BYTES: usize = 253;

/// Why a route was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteError(String);

/// One route: requests for `host` whose path is `prefix` or below it go to
/// `function` in `env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub host: HostPattern,
    #[serde(rename = "path")]
    pub prefix: PathPrefix,
    pub env: EnvId,
    pub function: FunctionName,
    /// Whether the function sees the whole path (`/api/users`) rather than
    /// the path below the prefix (`/users`, the default, as CloudBase's
    /// "路径透传" is off by default).
    #[serde(default)]
    pub keep_prefix: bool,
    #[serde(default)]
    pub auth: RouteAuth,
    /// When the route was added (Unix ms); set by the store's caller.
    #[serde(default)]
    pub created_at: i64,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteAuth {
    /// Anyone: a public web API or page.
    #[default]
    Public,
    /// A request must carry the env's key (or the admin key) in
    /// `Authorization: Bearer`.
    Key,
}

impl RouteAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAuth::Public => "public",
            RouteAuth::Key => "key",
        }
    }
}

/// The hosts a route answers: any, one, or every subdomain of one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// `*`: every host, including requests without a `Host`.
    #[default]
    Any,
    /// `*.example.com`: any name ending in `.example.com` (not `example.com`).
    Subdomains(String),
    /// `api.example.com`, matched without regard to case or port.
    Exact(String),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<Self, RouteError> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern.is_empty() || pattern == "*" {
            return Ok(HostPattern::Any);
        }
        if let Some(domain) = pattern.strip_prefix("*.") {
            valid_host_name(domain)?;
            return Ok(HostPattern::Subdomains(domain.to_owned()));
        }
        valid_host_name(&pattern)?;
        Ok(HostPattern::Exact(pattern))
    }

    /// Whether a request's host name (lowercase, without its port) matches.
    pub fn matches(&self, host: Option<&str>) -> bool {
        match (self, host) {
            (HostPattern::Any, _) => true,
            (_, None) => false,
            (HostPattern::Exact(name), Some(host)) => name == host,
            (HostPattern::Subdomains(domain), Some(host)) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        }
    }

    /// How closely the pattern names its hosts: a route for one host wins
    /// over a route for its subdomains, which wins over one for any host.
    pub fn specificity(&self) -> u8 {
        match self {
            HostPattern::Any => 0,
            HostPattern::Subdomains(_) => 1,
            HostPattern::Exact(_) => 2,
        }
    }
}

/// A host name: letters, digits and hyphens in dot-separated labels.
fn valid_host_name(name: &str) -> Result<(), RouteError> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > MAX_HOST_BYTES || !name.split('.').all(label_ok) {
        return Err(RouteError(format!(
            "{name:?} is not a host name (letters, digits and hyphens in dot-separated labels, no port), `*.domain` or `*`"
        )));
    }
    Ok(())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Subdomains(domain) => write!(f, "*.{domain}"),
            HostPattern::Exact(name) => f.write_str(name),
        }
    }
}

impl std::str::FromStr for HostPattern {
    type Err = RouteError;

    fn from_str(text: &str) -> Result<Self, RouteError> {
        HostPattern::parse(text)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A route's path prefix: `/`, or `/` and segments without a trailing slash
/// (`/api/v1`). It matches whole segments: `/api` takes `/api` and
/// `/api/users`, not `/apis`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPrefix(String);

impl PathPrefix {
    /// Refuses what no request path could match exactly as written: a
    /// relative path, empty, `.` or `..` segments, query or fragment marks,
    /// percent escapes and characters a path must escape. A trailing slash
    /// is dropped (`/api/` is `/api`).
    pub fn parse(prefix: &str) -> Result<Self, RouteError> {
        let refuse = |why: &str| Err(RouteError(format!("path {prefix:?}: {why}")));
        if !prefix.starts_with('/') {
            return refuse("must start with /");
        }
        if prefix.len() > MAX_PREFIX_BYTES {
            return refuse(&format!("is longer than {MAX_PREFIX_BYTES} bytes"));
        }
        let trimmed = match prefix.strip_suffix('/') {
            Some(rest) if !rest.is_empty() => rest,
            _ => prefix,
        };
        if trimmed == "/" {
            return Ok(PathPrefix("/".to_owned()));
        }
        for segment in trimmed[1..].split('/') {
            if segment.is_empty() {
                return refuse("has an empty segment (//)");
            }
            if segment == "." || segment == ".." {
                return refuse("has a . or .. segment");
            }
            // RFC 3986's pchar, less `%`: an escape would need decoding to
            // compare, and `?`/`#` would end the path.
            let pchar = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
            if !segment.bytes().all(pchar) {
                return refuse("may hold letters, digits and -._~!$&'()*+,;=:@ between slashes");
            }
        }
        Ok(PathPrefix(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The rest of `path` below the prefix (`/` for the prefix itself), or
    /// `None` when `path` is not at or below it.
    pub fn below<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.0 == "/" {
            return path.starts_with('/').then_some(path);
        }
        let rest = path.strip_prefix(self.0.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

impl fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PathPrefix {
    type Err = RouteError;

    fn from_str(text: &str) -> Result<Self, RouteError> {
        PathPrefix::parse(text)
    }
}

impl Serialize for PathPrefix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PathPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PathPrefix::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_matches_whole_segments_only() {
        let api = PathPrefix::parse("/api").unwrap();
        assert_eq!(api.below("/api"), Some("/"));
        assert_eq!(api.below("/api/"), Some("/"));
        assert_eq!(api.below("/api/users/1"), Some("/users/1"));
        assert_eq!(api.below("/apis"), None);
        assert_eq!(api.below("/other"), None);
    }

    #[test]
    fn the_root_prefix_matches_every_path_and_keeps_it() {
        let root = PathPrefix::parse("/").unwrap();
        assert_eq!(root.below("/"), Some("/"));
        assert_eq!(root.below("/a/b"), Some("/a/b"));
    }

    #[test]
    fn a_trailing_slash_is_dropped() {
        assert_eq!(PathPrefix::parse("/api/").unwrap().as_str(), "/api");
    }

    #[test]
    fn prefixes_no_request_could_match_as_written_are_refused() {
        for bad in [
            "", "api", "/a//b", "/a/../b", "/./a", "/a?x=1", "/a#f", "/a%20b", "/a b", "/é",
        ] {
            assert!(PathPrefix::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(PathPrefix::parse(&format!("/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn hosts_match_exactly_by_subdomain_or_any() {
        let exact = HostPattern::parse("API.example.com").unwrap();
        assert!(exact.matches(Some("api.example.com")));
        assert!(!exact.matches(Some("www.example.com")));
        assert!(!exact.matches(None));
        let subdomains = HostPattern::parse("*.example.com").unwrap();
        assert!(subdomains.matches(Some("a.example.com")));
        assert!(subdomains.matches(Some("a.b.example.com")));
        assert!(!subdomains.matches(Some("example.com")));
        assert!(!subdomains.matches(Some("badexample.com")));
        assert!(HostPattern::parse("*").unwrap().matches(None));
        assert!(HostPattern::parse("").unwrap().matches(Some("x")));
    }

    #[test]
    fn host_patterns_that_are_not_names_are_refused() {
        for bad in [
            "exa mple.com",
            "example.com:8080",
            "-a.com",
            "a..com",
            "*.",
            "**.a.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_route_reads_from_json_with_its_defaults() {
        let route: Route =
            serde_json::from_str(r#"{"path":"/api/","env":"prod","function":"hello"}"#).unwrap();
        assert_eq!(route.host, HostPattern::Any);
        assert_eq!(route.prefix.as_str(), "/api");
        assert!(!route.keep_prefix);
        assert_eq!(route.auth, RouteAuth::Public);
        let text = serde_json::to_value(&route).unwrap();
        assert_eq!(text["host"], "*");
        assert_eq!(text["path"], "/api");
        assert_eq!(text["auth"], "public");
    }
}
