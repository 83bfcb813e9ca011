//! The routes in memory, in the order they are tried: a request goes to the
//! first route whose host pattern takes its host and whose prefix holds its
//! path. Routes for one host come before routes for its subdomains, which
//! come before routes for any host (a custom domain is served by its own
//! routes, as a web server's virtual hosts are); among those, the longest
//! prefix wins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, Uri};
use cloudlet_core::{HostPattern, Route};
use cloudlet_store::{FunctionStore, StoreError};
use parking_lot::RwLock;

#[derive(Default)]
pub(crate) struct RouteTable {
    routes: RwLock<Arc<[Arc<Route>]>>,
    /// Whether any route names a host: only then does the main listener look
    /// at a request's host before its own API's routes.
    names_hosts: AtomicBool,
}

impl RouteTable {
    /// Replaces the table with the store's routes: at start, and after
    /// every change made through this server.
    pub(crate) async fn load(&self, store: &dyn FunctionStore) -> Result<(), StoreError> {
        let mut routes = store.routes().await?;
        in_order(&mut routes);
        let names_hosts = routes.iter().any(|r| r.host != HostPattern::Any);
        *self.routes.write() = routes.into_iter().map(Arc::new).collect();
        self.names_hosts.store(names_hosts, Ordering::Release);
        Ok(())
    }

    /// The route a request for `host` (lowercase, no port) and `path` takes.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<Arc<Route>> {
        let routes = Arc::clone(&self.routes.read());
        routes
            .iter()
            .find(|route| route.host.matches(host) && route.prefix.below(path).is_some())
            .cloned()
    }

    /// Whether a route names this request's host (exactly or as a
    /// subdomain), so that the access service, not the API, answers it.
    pub(crate) fn claims_host(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if !self.names_hosts.load(Ordering::Acquire) {
            return false;
        }
        let Some(host) = request_host(headers, uri) else {
            return false;
        };
        self.routes
            .read()
            .iter()
            .any(|route| route.host != HostPattern::Any && route.host.matches(Some(&host)))
    }
}

/// The order routes are tried in; see the module documentation.
fn in_order(routes: &mut [Route]) {
    routes.sort_by_key(|r| std::cmp::Reverse((r.host.specificity(), r.prefix.as_str().len())));
}

/// The host a request was sent to, lowercase and without its port: the
/// `Host` header, else the URI's authority (an absolute-form request).
pub(crate) fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let authority = match headers.get(header::HOST) {
        Some(host) => host.to_str().ok()?,
        None => uri.authority()?.as_str(),
    };
    let name = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(name, _)| name),
    };
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudlet_core::{EnvId, FunctionName, PathPrefix, RouteAuth};

    fn route(host: &str, prefix: &str, function: &str) -> Route {
        Route {
            host: HostPattern::parse(host).unwrap(),
            prefix: PathPrefix::parse(prefix).unwrap(),
            env: EnvId::default_env(),
            function: FunctionName::parse(function).unwrap(),
            keep_prefix: false,
            auth: RouteAuth::Public,
            created_at: 0,
        }
    }

    fn table(routes: Vec<Route>) -> RouteTable {
        let table = RouteTable::default();
        let mut routes = routes;
        in_order(&mut routes);
        *table.routes.write() = routes.into_iter().map(Arc::new).collect();
        table
    }

    fn found(table: &RouteTable, host: Option<&str>, path: &str) -> Option<String> {
        table.find(host, path).map(|r| r.function.to_string())
    }

    #[test]
    fn the_longest_prefix_wins() {
        let table = table(vec![
            route("*", "/", "root"),
            route("*", "/api", "api"),
            route("*", "/api/users", "users"),
        ]);
        assert_eq!(
            found(&table, None, "/api/users/7").as_deref(),
            Some("users")
        );
        assert_eq!(found(&table, None, "/api/orders").as_deref(), Some("api"));
        assert_eq!(found(&table, None, "/apis").as_deref(), Some("root"));
    }

    #[test]
    fn a_hosts_own_routes_come_before_routes_for_any_host() {
        let table = table(vec![
            route("*", "/api/deep", "any"),
            route("*.example.com", "/api", "subdomains"),
            route("shop.example.com", "/", "shop"),
        ]);
        let at = |host| found(&table, Some(host), "/api/deep/x");
        assert_eq!(at("shop.example.com").as_deref(), Some("shop"));
        assert_eq!(at("blog.example.com").as_deref(), Some("subdomains"));
        assert_eq!(at("other.org").as_deref(), Some("any"));
        assert_eq!(found(&table, Some("other.org"), "/"), None);
    }

    #[test]
    fn the_host_is_read_without_port_or_case() {
        let uri: Uri = "/x".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "Shop.Example.com:8080".parse().unwrap());
        assert_eq!(
            request_host(&headers, &uri).as_deref(),
            Some("shop.example.com")
        );
        headers.insert(header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(request_host(&headers, &uri).as_deref(), Some("::1"));
        let absolute: Uri = "http://a.example.com:1/x".parse().unwrap();
        assert_eq!(
            request_host(&HeaderMap::new(), &absolute).as_deref(),
            Some("a.example.com")
        );
    }
}
