//! An env's invocations: listed newest first, filtered and paged
//! (`GET /v1/envs/{env}/invocations?function=&status=&trigger=&limit=&before=`),
//! and a queued one cancelled (`DELETE …/invocations/{id}`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use cloudlet_core::{ErrorCode, FunctionName, InvocationStatus, InvocationSummary, RequestId};
use cloudlet_store::invocation_queue::QueueKey;
use cloudlet_store::InvocationQuery;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::EnvReader;
use crate::App;

/// A page's length unless the query asks for another, and the most it may.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    function: Option<String>,
    status: Option<String>,
    trigger: Option<String>,
    limit: Option<usize>,
    /// The `next` of the page before.
    before: Option<String>,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidParam, message)
}

impl ListParams {
    fn query(self) -> Result<InvocationQuery, ApiError> {
        let function = self
            .function
            .map(FunctionName::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let status = self
            .status
            .map(|status| {
                InvocationStatus::parse(&status).ok_or_else(|| {
                    let known: Vec<&str> =
                        InvocationStatus::ALL.iter().map(|s| s.as_str()).collect();
                    invalid(format!("status is one of {}", known.join(", ")))
                })
            })
            .transpose()?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(format!("limit is from 1 to {MAX_PAGE}")));
        }
        let before = self.before.map(|cursor| cursor_of(&cursor)).transpose()?;
        Ok(InvocationQuery {
            function,
            status,
            trigger: self.trigger,
            before,
            limit,
        })
    }
}

/// A page's `next`: where the page after it starts (`startedAt:requestId`).
fn cursor(last: &InvocationSummary) -> String {
    format!("{}:{}", last.started_at, last.request_id)
}

fn cursor_of(cursor: &str) -> Result<(i64, RequestId), ApiError> {
    let bad = || invalid("before is the `next` of the page before".to_owned());
    let (at, id) = cursor.split_once(':').ok_or_else(bad)?;
    let at = at.parse().map_err(|_| bad())?;
    let id = RequestId::parse(id).map_err(|_| bad())?;
    Ok((at, id))
}

pub(crate) async fn list(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| invalid(e.body_text()))?;
    let query = params.query()?;
    let listed = app
        .records
        .invocations(access.env(), &query)
        .await
        .map_err(ApiError::storage)?;
    let next = (listed.len() == query.limit)
        .then(|| listed.last().map(cursor))
        .flatten();
    Ok(Json(json!({ "invocations": listed, "next": next })))
}

pub(crate) async fn cancel(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let request_id = RequestId::parse(id).map_err(|e| invalid(e.to_string()))?;
    let key = QueueKey {
        env: access.env().clone(),
        request_id,
    };
    app.invoker.cancel(&key).await?;
    Ok(Json(
        json!({ "requestId": key.request_id.as_str(), "cancelled": true }),
    ))
}
