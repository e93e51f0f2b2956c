//! Kafka Connect's REST API on axum, with its JSON shapes and error bodies
//! (`{"error_code": 404, "message": "Connector x not found"}`).

use crate::config::Props;
use crate::error::ConnectError;
use crate::plugins;
use crate::worker::{validate_config, TargetState, Worker};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

/// An error response in Kafka Connect's shape.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error_code": self.0.as_u16(), "message": self.1})),
        )
            .into_response()
    }
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        let status = match &e {
            ConnectError::NotFound(_) => StatusCode::NOT_FOUND,
            ConnectError::AlreadyExists(_) => StatusCode::CONFLICT,
            ConnectError::Config { .. } | ConnectError::UnknownPlugin(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match e {
            ConnectError::NotFound(n) => format!("Connector {n} not found"),
            ConnectError::AlreadyExists(n) => format!("Connector {n} already exists"),
            ConnectError::Config { message, .. }
                if message.starts_with("Connector configuration") =>
            {
                message
            }
            other => other.to_string(),
        };
        ApiError(status, message)
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// Turns a JSON object of strings into [`Props`] (numbers and booleans are accepted as text).
fn to_props(v: &serde_json::Value) -> ApiResult<Props> {
    let o = v
        .as_object()
        .ok_or_else(|| bad_request("connector config must be a JSON object"))?;
    let mut props = Props::new();
    for (k, v) in o {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(bad_request(format!("config value of {k} must be a string"))),
        };
        props.insert(k.clone(), s);
    }
    Ok(props)
}

fn parse_body(body: &[u8]) -> ApiResult<serde_json::Value> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("Request body is not valid JSON: {e}")))
}

/// The router serving the REST API for `worker`.
pub fn router(worker: Worker) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(get_connector).put(put_config).delete(delete_connector),
        )
        .route("/connectors/{name}/config", get(get_config).put(put_config))
        .route("/connectors/{name}/status", get(get_status))
        .route("/connectors/{name}/offsets", get(get_offsets))
        .route("/connectors/{name}/tasks", get(get_tasks))
        .route("/connectors/{name}/tasks/{id}/status", get(get_task_status))
        .route("/connectors/{name}/restart", post(restart_connector))
        .route("/connectors/{name}/tasks/{id}/restart", post(restart_task))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed".into(),
            )
        })
        .with_state(worker)
}

/// Serves the REST API on `listener` until `shutdown` resolves.
pub async fn serve(
    worker: Worker,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(worker))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn root(State(w): State<Worker>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": "fjord",
        "kafka_cluster_id": w.kafka_cluster_id().await,
    }))
}

async fn list_connectors(
    State(w): State<Worker>,
    Query(q): Query<Vec<(String, String)>>,
) -> Json<serde_json::Value> {
    let expand: Vec<String> = q
        .into_iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v)
        .collect();
    let names = w.connectors();
    if expand.is_empty() {
        return Json(json!(names));
    }
    let mut out = serde_json::Map::new();
    for n in names {
        let mut entry = serde_json::Map::new();
        if expand.iter().any(|e| e == "status") {
            if let Ok(s) = w.status(&n) {
                entry.insert("status".into(), s);
            }
        }
        if expand.iter().any(|e| e == "info") {
            if let Ok(i) = w.connector_info(&n) {
                entry.insert("info".into(), i);
            }
        }
        out.insert(n, serde_json::Value::Object(entry));
    }
    Json(serde_json::Value::Object(out))
}

async fn create_connector(State(w): State<Worker>, body: axum::body::Bytes) -> ApiResult<Response> {
    let body = parse_body(&body)?;
    let name = body["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad_request("Connector name must not be empty"))?
        .to_string();
    let mut config = to_props(body.get("config").unwrap_or(&json!({})))?;
    if let Some(n) = config.get("name") {
        if *n != name {
            return Err(bad_request(format!(
                "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
            )));
        }
    }
    config.insert("name".into(), name.clone());
    w.create_connector(&name, config).await?;
    Ok((StatusCode::CREATED, Json(w.connector_info(&name)?)).into_response())
}

async fn get_connector(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(w.connector_info(&name)?))
}

async fn delete_connector(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    w.delete_connector(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_config(State(w): State<Worker>, Path(name): Path<String>) -> ApiResult<Json<Props>> {
    Ok(Json(w.connector_config(&name)?))
}

async fn put_config(
    State(w): State<Worker>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let config = to_props(&parse_body(&body)?)?;
    if let Some(n) = config.get("name") {
        if *n != name {
            return Err(bad_request(format!(
                "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
            )));
        }
    }
    let created = w.put_connector_config(&name, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(w.connector_info(&name)?)).into_response())
}

async fn get_status(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(w.status(&name)?))
}

async fn get_offsets(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(w.offsets(&name).await?))
}

async fn get_tasks(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(w.task_configs(&name)?))
}

async fn get_task_status(
    State(w): State<Worker>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: u32 = id
        .parse()
        .map_err(|_| bad_request(format!("invalid task id {id}")))?;
    w.task_status(&name, id).map(Json).map_err(|e| match e {
        ConnectError::NotFound(_) if w.connector_info(&name).is_ok() => ApiError(
            StatusCode::NOT_FOUND,
            format!("No status found for task {name}-{id}"),
        ),
        other => other.into(),
    })
}

async fn restart_connector(
    State(w): State<Worker>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let flag = |k: &str| q.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let include_tasks = flag("includeTasks");
    let only_failed = flag("onlyFailed");
    w.restart_connector(&name, include_tasks, only_failed)
        .await?;
    if include_tasks || only_failed {
        Ok((StatusCode::ACCEPTED, Json(w.status(&name)?)).into_response())
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

async fn restart_task(
    State(w): State<Worker>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: u32 = id
        .parse()
        .map_err(|_| bad_request(format!("invalid task id {id}")))?;
    w.restart_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(w): State<Worker>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.set_target(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(w): State<Worker>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.set_target(&name, TargetState::Started).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(w): State<Worker>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.set_target(&name, TargetState::Stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_plugins() -> Json<serde_json::Value> {
    let list: Vec<_> = plugins::builtin()
        .iter()
        .map(|p| json!({"class": p.class, "type": p.kind.as_str(), "version": p.version()}))
        .collect();
    Json(json!(list))
}

async fn validate(
    Path(plugin): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let config = to_props(&parse_body(&body)?)?;
    if let Some(class) = config.get("connector.class") {
        let named = plugins::find(&plugin).map(|p| p.class);
        if named.is_some() && named != plugins::find(class).map(|p| p.class) {
            return Err(bad_request(
                "Included connector type does not match request type".to_string(),
            ));
        }
    }
    Ok(Json(validate_config(&plugin, &config)?))
}
