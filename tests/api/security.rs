//! The OWASP API matrix (API1 object level, API2 authentication, API5 function level): every
//! operation of the OpenAPI document, called by every kind of caller, answers as its access rule
//! says. The operations come from the served document, and each must have a rule here, so a new
//! route cannot be added without deciding who may call it.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use ktxh::auth::{self, Role, TokenRecord};
use ktxh::store::DynStore;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{mint_token, spawn_app_with, wait_until, Backend, TestApp};
use crate::on_every_backend;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Admin,
    /// A department token of the department that owns what the operation touches.
    Owner,
    /// A department token of another department.
    OtherDepartment,
    Viewer,
    /// An approver token of the department that owns what the operation touches.
    OwnerApprover,
    /// An approver token of another department.
    OtherApprover,
    /// A statistics office token.
    Statistics,
    Expired,
    Revoked,
    Anonymous,
}

const CALLERS: [Caller; 10] = [
    Caller::Admin,
    Caller::Owner,
    Caller::OtherDepartment,
    Caller::Viewer,
    Caller::OwnerApprover,
    Caller::OtherApprover,
    Caller::Statistics,
    Caller::Expired,
    Caller::Revoked,
    Caller::Anonymous,
];

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, without a token: health, readiness, metrics, the API's own description.
    Public,
    /// Any valid token.
    AnyToken,
    /// Admins, and the department that owns the indicator or alert.
    OwnerOrAdmin,
    /// Admins only.
    Admin,
    /// Any valid token but one bound to another department (its feed's or its approver's): a
    /// department's page.
    NotOtherDepartment,
    /// The approver of the department that owns the figures (the probe verifies them); no
    /// other role, admins included, approves.
    OwnerApprover,
}

/// What the matrix expects: allowed (a 2xx, or 101 for the websocket), or refused with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Refused(u16),
}

fn expected(access: Access, caller: Caller) -> Expect {
    use Caller::*;
    if matches!(access, Access::Public) {
        return Expect::Allowed;
    }
    if matches!(caller, Expired | Revoked | Anonymous) {
        return Expect::Refused(401);
    }
    match (access, caller) {
        (Access::OwnerApprover, OwnerApprover) => Expect::Allowed,
        (Access::OwnerApprover, _) => Expect::Refused(403),
        (Access::NotOtherDepartment, OtherDepartment | OtherApprover) => Expect::Refused(403),
        (Access::NotOtherDepartment, _) => Expect::Allowed,
        (Access::AnyToken, _) | (_, Admin) => Expect::Allowed,
        (Access::OwnerOrAdmin, Owner) => Expect::Allowed,
        _ => Expect::Refused(403),
    }
}

/// The access rule of every documented operation, and the department that owns what its probe
/// touches. An operation missing here fails the matrix.
fn rules() -> BTreeMap<&'static str, (Access, &'static str)> {
    use Access::*;
    // Read-only operations carry the department of their example for the record; any valid
    // token reads everything (the screens show the whole city).
    BTreeMap::from([
        ("ops_healthz", (Public, "CUSTOMS")),
        ("ops_readyz", (Public, "CUSTOMS")),
        ("ops_metrics", (Public, "CUSTOMS")),
        ("openapi_document", (Public, "CUSTOMS")),
        ("openapi_page", (Public, "CUSTOMS")),
        ("catalogue_groups", (AnyToken, "CUSTOMS")),
        ("catalogue_indicators", (AnyToken, "CUSTOMS")),
        ("catalogue_indicator", (AnyToken, "CUSTOMS")),
        ("catalogue_units", (AnyToken, "CUSTOMS")),
        ("targets_list", (AnyToken, "CUSTOMS")),
        ("targets_history", (AnyToken, "CUSTOMS")),
        ("alerts_list", (AnyToken, "CUSTOMS")),
        ("alerts_silences", (AnyToken, "CUSTOMS")),
        ("feeds_list", (AnyToken, "CUSTOMS")),
        ("reports_get", (AnyToken, "CUSTOMS")),
        ("status_list", (AnyToken, "CUSTOMS")),
        ("status_one", (AnyToken, "CUSTOMS")),
        ("status_path", (AnyToken, "CUSTOMS")),
        ("plan_get", (AnyToken, "CUSTOMS")),
        ("plan_summary", (AnyToken, "CUSTOMS")),
        ("observations_list", (AnyToken, "CUSTOMS")),
        ("observations_revisions", (AnyToken, "CUSTOMS")),
        ("ws_ticket", (AnyToken, "CUSTOMS")),
        ("explanations_list", (AnyToken, "CUSTOMS")),
        ("explanations_current", (AnyToken, "CUSTOMS")),
        ("departments_list", (AnyToken, "FINANCE")),
        ("departments_dashboard", (NotOtherDepartment, "FINANCE")),
        ("departments_activity", (NotOtherDepartment, "FINANCE")),
        ("explanations_post", (OwnerOrAdmin, "CUSTOMS")),
        ("ws_upgrade", (AnyToken, "CUSTOMS")),
        ("observations_post", (OwnerOrAdmin, "CUSTOMS")),
        ("dhis2_post", (OwnerOrAdmin, "HEALTH")),
        ("dhis2_post_versioned", (OwnerOrAdmin, "HEALTH")),
        ("influx_write_v2", (OwnerOrAdmin, "POLICE")),
        ("influx_write_v1", (OwnerOrAdmin, "POLICE")),
        ("influx_ping", (Public, "POLICE")),
        ("influx_ping_head", (Public, "POLICE")),
        ("influx_health", (Public, "POLICE")),
        ("influx_query", (AnyToken, "POLICE")),
        ("influx_query_post", (AnyToken, "POLICE")),
        ("alerts_ack", (OwnerOrAdmin, "CUSTOMS")),
        ("alerts_create_silence", (OwnerOrAdmin, "CUSTOMS")),
        ("alerts_expire_silence", (OwnerOrAdmin, "CUSTOMS")),
        ("approvals_post", (OwnerApprover, "CUSTOMS")),
        ("targets_put", (Admin, "CUSTOMS")),
        ("targets_audit", (Admin, "CUSTOMS")),
        ("alerts_notifications", (Admin, "CUSTOMS")),
        ("tasks_list", (AnyToken, "CUSTOMS")),
        ("tasks_one", (AnyToken, "CUSTOMS")),
        ("tasks_create", (Admin, "CUSTOMS")),
        ("tasks_put", (Admin, "CUSTOMS")),
        ("tasks_progress", (OwnerOrAdmin, "CUSTOMS")),
    ])
}

/// One documented operation.
struct Operation {
    id: String,
    method: String,
    path: String,
    spec: Value,
}

fn operations(document: &Value) -> Vec<Operation> {
    let paths = document["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(spec) = item.get(method) {
                found.push(Operation {
                    id: spec["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                        .to_owned(),
                    method: method.to_owned(),
                    path: path.clone(),
                    spec: spec.clone(),
                });
            }
        }
    }
    found
}

fn example_text(parameter: &Value) -> Option<String> {
    let example = if parameter["example"].is_null() {
        &parameter["schema"]["example"]
    } else {
        &parameter["example"]
    };
    match example {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// The operation's path with its path parameters and required query parameters taken from the
/// document's examples.
fn concrete(operation: &Operation, overrides: &BTreeMap<&str, String>) -> String {
    let mut path = operation.path.clone();
    let mut query = Vec::new();
    for parameter in operation.spec["parameters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = parameter["name"].as_str().expect("parameter name");
        let value = overrides
            .get(name)
            .cloned()
            .or_else(|| example_text(parameter));
        match parameter["in"].as_str() {
            Some("path") => {
                let value =
                    value.unwrap_or_else(|| panic!("{}: no example for {name}", operation.id));
                path = path.replace(&format!("{{{name}}}"), &value);
            }
            Some("query") if parameter["required"] == true => {
                let value =
                    value.unwrap_or_else(|| panic!("{}: no example for {name}", operation.id));
                query.push(format!("{name}={value}"));
            }
            _ => {}
        }
    }
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The first documented request body example, with its media type: the media type's own, or
/// that of the schema it refers to.
fn body_example(document: &Value, operation: &Operation) -> Option<(String, String)> {
    let content = operation.spec["requestBody"]["content"].as_object()?;
    let (media, body) = content.iter().next()?;
    let schema = match body["schema"]["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next()?;
            &document["components"]["schemas"][name]
        }
        None => &body["schema"],
    };
    let example = [&body["example"], &schema["example"]]
        .into_iter()
        .find(|example| !example.is_null())?;
    let text = match example {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    Some((media.clone(), text))
}

struct Tokens {
    admin: String,
    viewer: String,
    expired: String,
    revoked: String,
    departments: BTreeMap<String, String>,
    approvers: BTreeMap<String, String>,
    statistics: String,
}

impl Tokens {
    async fn mint(app: &TestApp) -> Self {
        let store = &app.store;
        let (revoked_id, revoked) = mint_token(store, Role::Department, Some("CUSTOMS")).await;
        assert!(store
            .revoke_token(&revoked_id, Utc::now())
            .await
            .expect("revoke"));
        Self {
            admin: app.admin.clone(),
            viewer: app.viewer.clone(),
            expired: expired_token(store).await,
            revoked,
            departments: BTreeMap::new(),
            approvers: BTreeMap::new(),
            statistics: mint_token(store, Role::Statistics, None).await.1,
        }
    }

    async fn department(&mut self, store: &DynStore, code: &str) -> String {
        if let Some(token) = self.departments.get(code) {
            return token.clone();
        }
        let (_, token) = mint_token(store, Role::Department, Some(code)).await;
        self.departments.insert(code.to_owned(), token.clone());
        token
    }

    async fn approver(&mut self, store: &DynStore, code: &str) -> String {
        if let Some(token) = self.approvers.get(code) {
            return token.clone();
        }
        let (_, token) = mint_token(store, Role::Approver, Some(code)).await;
        self.approvers.insert(code.to_owned(), token.clone());
        token
    }

    async fn of(&mut self, store: &DynStore, caller: Caller, owner: &str) -> Option<String> {
        let other = if owner == "FINANCE" {
            "CUSTOMS"
        } else {
            "FINANCE"
        };
        Some(match caller {
            Caller::Admin => self.admin.clone(),
            Caller::Viewer => self.viewer.clone(),
            Caller::Owner => self.department(store, owner).await,
            Caller::OtherDepartment => self.department(store, other).await,
            Caller::OwnerApprover => self.approver(store, owner).await,
            Caller::OtherApprover => self.approver(store, other).await,
            Caller::Statistics => self.statistics.clone(),
            Caller::Expired => self.expired.clone(),
            Caller::Revoked => self.revoked.clone(),
            Caller::Anonymous => return None,
        })
    }
}

/// A department token whose expiry passed yesterday.
async fn expired_token(store: &DynStore) -> String {
    let minted = auth::mint();
    store
        .insert_token(&TokenRecord {
            id: minted.id.clone(),
            name: "expired".into(),
            role: Role::Department,
            department: Some("CUSTOMS".into()),
            digest: minted.digest.clone(),
            created_at: Utc::now() - Duration::days(400),
            expires_at: Some(Utc::now() - Duration::days(1)),
            revoked_at: None,
        })
        .await
        .expect("insert token");
    minted.plain
}

/// An active alert about the department's own data; a fresh database has a stale feed for
/// every department, so one appears with the first evaluation.
async fn active_alert_of(app: &TestApp, department: &str) -> String {
    let what = format!("an active alert of {department}");
    wait_until(&what, std::time::Duration::from_secs(10), async || {
        let reply = app.get("/api/v1/alerts", &app.admin).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["alerts"].as_array().and_then(|alerts| {
            alerts.iter().find_map(|alert| {
                (alert["labels"]["department"] == department)
                    .then(|| alert["fingerprint"].as_str().map(str::to_owned))
                    .flatten()
            })
        })
    })
    .await
}

async fn new_silence(app: &TestApp, department: &str) -> String {
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/silences"))
                .bearer_auth(&app.admin)
                .json(
                    &json!({"matchers": {"department": department}, "duration_minutes": 60,
                              "comment": "bảo trì hệ thống"}),
                ),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["id"].as_str().expect("silence id").to_owned()
}

/// Opens `/ws` with the token as a bearer header; the status of the handshake's answer.
async fn websocket_status(app: &TestApp, token: Option<&str>) -> u16 {
    let mut request = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            response.status().as_u16()
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("websocket handshake failed: {other}"),
    }
}

/// Calls one operation as one caller, with whatever it needs prepared fresh for the call.
async fn call(
    app: &TestApp,
    document: &Value,
    operation: &Operation,
    owner: &str,
    token: Option<&str>,
) -> (u16, String) {
    if operation.id == "ws_upgrade" {
        return (websocket_status(app, token).await, String::new());
    }
    let mut overrides = BTreeMap::new();
    match operation.id.as_str() {
        "alerts_ack" => {
            overrides.insert("fingerprint", active_alert_of(app, owner).await);
        }
        "alerts_expire_silence" => {
            overrides.insert("id", new_silence(app, owner).await);
        }
        _ => {}
    }
    let url = app.url(&concrete(operation, &overrides));
    let method = operation.method.to_uppercase().parse().expect("method");
    let mut request = app.client.request(method, url);
    let body = match operation.id.as_str() {
        "alerts_ack" => Some((
            "application/json".to_owned(),
            json!({"comment": "đang xử lý"}).to_string(),
        )),
        "alerts_create_silence" => Some((
            "application/json".to_owned(),
            json!({"matchers": {"department": owner}, "duration_minutes": 30,
                   "comment": "bảo trì hệ thống"})
            .to_string(),
        )),
        _ => body_example(document, operation),
    };
    if let Some((media, text)) = body {
        request = request.header("content-type", media).body(text);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn every_operation_answers_every_caller_as_its_access_rule_says(backend: Backend) {
    // Expired, revoked and missing tokens are presented on purpose for every operation: the
    // per-address throttle of failed authentications would otherwise answer 429 instead of 401.
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.limits.auth_failures_per_minute = 10_000;
    })
    .await
    else {
        return;
    };
    let document: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("JSON");
    let rules = rules();
    let operations = operations(&document);
    let unruled: Vec<_> = operations
        .iter()
        .filter(|o| !rules.contains_key(o.id.as_str()))
        .map(|o| format!("{} {} ({})", o.method, o.path, o.id))
        .collect();
    assert!(
        unruled.is_empty(),
        "operations without an access rule in the matrix: {unruled:?}"
    );

    // The one revision the revisions probe reads.
    let reply = app
        .post_observations(
            &app.admin,
            &json!({"observations": [{"indicator": "EXPORT_TURNOVER", "unit": "HCM",
                                      "period": "2026-03", "value": 4120.5}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let mut tokens = Tokens::mint(&app).await;
    let mut wrong = Vec::new();
    for operation in &operations {
        let (access, owner) = rules[operation.id.as_str()];
        // Refusals first: a refused write must leave nothing for the allowed ones to trip on.
        let mut callers = CALLERS.to_vec();
        callers.sort_by_key(|caller| expected(access, *caller) == Expect::Allowed);
        for caller in callers {
            let token = tokens.of(&app.store, caller, owner).await;
            let (status, body) = call(&app, &document, operation, owner, token.as_deref()).await;
            let ok = match expected(access, caller) {
                Expect::Allowed => (200..300).contains(&status) || status == 101,
                Expect::Refused(want) => status == want,
            };
            if !ok {
                wrong.push(format!(
                    "{} {} as {caller:?}: expected {:?}, got {status} {}",
                    operation.method,
                    operation.path,
                    expected(access, caller),
                    body.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}

/// A NUL in the path or the query is refused as a field of the request on every backend
/// (PostgreSQL cannot take one in text: it was a 500 there), naming where it is.
async fn a_nul_in_the_path_or_the_query_is_refused_naming_where(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    for (path, pointer) in [
        ("/api/v1/tasks/%00", "path"),
        ("/api/v1/tasks/T%00X", "path"),
        ("/api/v1/notifications?alert=%00", "alert"),
        (
            "/api/v1/notifications?status=pending&receiver=a%00b",
            "receiver",
        ),
    ] {
        let reply = app.get(path, &app.admin).await;
        assert_eq!(reply.status, 422, "{path}: {reply:?}");
        assert_eq!(reply.body["code"], "invalid_field", "{path}: {reply:?}");
        assert_eq!(
            reply.body["errors"][0]["pointer"], pointer,
            "{path}: {reply:?}"
        );
    }
    // The same without the NUL is answered as before.
    let listed = app.get("/api/v1/notifications?alert=x", &app.admin).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    app.stop().await;
}

/// A credential in the URL is refused as such on every route, those that take no query
/// parameters too; a parameter given twice is named.
async fn a_token_in_the_url_is_told_as_such_and_a_repeated_parameter_named(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    for path in [
        format!("/api/v1/groups?token={}", app.viewer),
        format!("/api/v1/status?access_token={}", app.viewer),
    ] {
        let reply = app.get(&path, &app.viewer).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (400, Some("token_in_url")),
            "{path}: {reply:?}"
        );
    }
    let twice = app
        .get("/api/v1/status?year=2026&year=2025", &app.viewer)
        .await;
    assert_eq!(twice.status, 422, "{twice:?}");
    assert_eq!(twice.body["errors"][0]["pointer"], "year", "{twice:?}");
    app.stop().await;
}

on_every_backend!(
    every_operation_answers_every_caller_as_its_access_rule_says,
    a_nul_in_the_path_or_the_query_is_refused_naming_where,
    a_token_in_the_url_is_told_as_such_and_a_repeated_parameter_named,
);
