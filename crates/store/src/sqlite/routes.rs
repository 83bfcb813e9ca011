//! The access service's routes in SQLite: one row per host and prefix.

use cloudlet_core::{EnvId, FunctionName, HostPattern, PathPrefix, Route, RouteAuth};
use rusqlite::{params, Connection, Row};

use super::DbContext;
use crate::{Result, StoreError};

pub(super) fn list(conn: &Connection) -> Result<Vec<Route>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT host, prefix, env, function, keep_prefix, auth, created_at \
             FROM routes ORDER BY host, prefix",
        )
        .ctx("cannot list the routes")?;
    let rows = statement
        .query_map([], |row| Ok(read(row)))
        .ctx("cannot list the routes")?;
    rows.map(|row| row.ctx("cannot read a route")?).collect()
}

/// Adds the route unless one has its host and prefix: false then.
pub(super) fn add(conn: &Connection, route: &Route) -> Result<bool> {
    let added = conn
        .execute(
            "INSERT INTO routes (host, prefix, env, function, keep_prefix, auth, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (host, prefix) DO NOTHING",
            params![
                route.host.to_string(),
                route.prefix.as_str(),
                route.env.as_str(),
                route.function.as_str(),
                route.keep_prefix,
                route.auth.as_str(),
                route.created_at,
            ],
        )
        .ctx("cannot store the route")?;
    Ok(added == 1)
}

pub(super) fn remove(conn: &Connection, host: &HostPattern, prefix: &PathPrefix) -> Result<bool> {
    let removed = conn
        .execute(
            "DELETE FROM routes WHERE host = ?1 AND prefix = ?2",
            params![host.to_string(), prefix.as_str()],
        )
        .ctx("cannot remove the route")?;
    Ok(removed == 1)
}

/// A row as a route; a row this build cannot read is corruption, not absence.
fn read(row: &Row<'_>) -> Result<Route> {
    let text = |index: usize| -> Result<String> {
        row.get::<_, String>(index)
            .ctx("cannot read a route's column")
    };
    let corrupt = |what: &str, why: String| StoreError(format!("corrupt route {what}: {why}"));
    Ok(Route {
        host: HostPattern::parse(&text(0)?).map_err(|e| corrupt("host", e.to_string()))?,
        prefix: PathPrefix::parse(&text(1)?).map_err(|e| corrupt("prefix", e.to_string()))?,
        env: EnvId::parse(text(2)?).map_err(|e| corrupt("env", e.to_string()))?,
        function: FunctionName::parse(text(3)?).map_err(|e| corrupt("function", e.to_string()))?,
        keep_prefix: row.get(4).ctx("cannot read a route's column")?,
        auth: match text(5)?.as_str() {
            "key" => RouteAuth::Key,
            "public" => RouteAuth::Public,
            other => return Err(corrupt("auth", other.to_owned())),
        },
        created_at: row.get(6).ctx("cannot read a route's column")?,
    })
}
