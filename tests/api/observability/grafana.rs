//! The Grafana dashboard checker: every panel's and every variable's datasource must be one
//! the dashboard declares (a datasource variable or an `__inputs` entry) of the same plugin
//! type; Prometheus queries may read only metrics the live `/metrics` exposes; SQL queries run,
//! with Grafana's macros and variables expanded as Grafana would, in a read-only transaction
//! against a real migrated TimescaleDB database, so PostgreSQL itself judges their tables,
//! columns and functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Column, Executor, PgPool, Statement};

use super::exposition::Exposition;
use super::promql;
use super::sql::{quote_literal, relative_time, Expander, Variable};

const PROMETHEUS: &str = "prometheus";
/// The uid of a panel whose targets each name their own datasource.
const MIXED: &str = "-- Mixed --";
/// The PostgreSQL plugin's id since Grafana 10.3; `postgres` before.
const POSTGRES: &[&str] = &["grafana-postgresql-datasource", "postgres"];

/// One query to check: a panel target's or a variable's.
struct Query<'q> {
    /// Where it is, for the problems: file and panel or variable.
    place: &'q str,
    /// The JSON object that may name its own datasource.
    holder: &'q Value,
    /// The panel's datasource, for targets that do not name one.
    inherited: Option<(String, String)>,
    text: &'q str,
    /// Grafana's result format: `time_series` needs a `time` column.
    format: &'q str,
    /// A variable query: Prometheus ones are `label_values(...)` and the like.
    variable: bool,
}

/// What checking one dashboard found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    /// Each SQL query that ran, by where it is, with the rows it returned.
    pub sql_rows: Vec<(String, usize)>,
}

/// Checks dashboards against one live exposition and one migrated database.
pub struct Checker<'a> {
    pub exposition: &'a Exposition,
    pub database: &'a PgPool,
    /// Values that replace variables' saved values (e.g. an indicator the database holds).
    pub overrides: BTreeMap<String, Vec<String>>,
    pub now: DateTime<Utc>,
}

/// The `{type, uid}` of a datasource reference; `None` when absent.
fn datasource_ref(value: &Value) -> Option<(String, String)> {
    let object = value.get("datasource")?;
    let kind = object.get("type")?.as_str().unwrap_or_default().to_owned();
    let uid = object.get("uid")?.as_str().unwrap_or_default().to_owned();
    Some((kind, uid))
}

/// The variable a `${name}` or `$name` uid refers to.
fn variable_name(uid: &str) -> Option<&str> {
    uid.strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .or_else(|| uid.strip_prefix('$'))
}

/// Every panel with its title, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(list: Option<&'a Value>, out: &mut Vec<(String, &'a Value)>) {
        for panel in list.and_then(Value::as_array).into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("(untitled)").to_owned();
            out.push((title, panel));
            walk(panel.get("panels"), out);
        }
    }
    let mut out = Vec::new();
    walk(dashboard.get("panels"), &mut out);
    out
}

impl Checker<'_> {
    /// Checks one dashboard; `file` names it in the problems.
    pub async fn check(&self, file: &str, dashboard: &Value) -> Report {
        let mut report = Report::default();
        let declared = declared_datasources(dashboard);
        if declared.is_empty() {
            report
                .problems
                .push(format!("{file}: declares no datasource"));
        }
        let time = &dashboard["time"];
        let range =
            relative_time(time["from"].as_str().unwrap_or_default(), self.now).and_then(|from| {
                Ok((
                    from,
                    relative_time(time["to"].as_str().unwrap_or_default(), self.now)?,
                ))
            });
        let (from, to) = match range {
            Ok(range) => range,
            Err(problem) => {
                report.problems.push(format!("{file}: {problem}"));
                return report;
            }
        };
        let mut variables: BTreeMap<String, Variable> = BTreeMap::new();
        let templating = dashboard["templating"]["list"].as_array();
        for variable in templating.into_iter().flatten() {
            let name = variable["name"].as_str().unwrap_or_default().to_owned();
            let place = format!("{file}: variable `${name}`");
            let kind = variable["type"].as_str().unwrap_or_default();
            if kind == "datasource" {
                continue;
            }
            let mut values = self
                .overrides
                .get(&name)
                .cloned()
                .unwrap_or_else(|| saved_values(variable));
            if kind == "query" {
                let text = match &variable["query"] {
                    Value::String(text) => text.clone(),
                    other => other["query"].as_str().unwrap_or_default().to_owned(),
                };
                let expander = Expander {
                    variables: &variables,
                    from,
                    to,
                };
                let query = Query {
                    place: &place,
                    holder: variable,
                    inherited: None,
                    text: &text,
                    format: "table",
                    variable: true,
                };
                // As Grafana does on load: a variable without a saved value takes the first
                // its query returns.
                let first = self
                    .check_query(&query, &declared, &expander, &mut report)
                    .await;
                if values.is_empty() {
                    values.extend(first.into_iter().take(1));
                }
            }
            let multi = variable["multi"].as_bool().unwrap_or(false)
                || variable["includeAll"].as_bool().unwrap_or(false);
            variables.insert(name, Variable { values, multi });
        }
        let expander = Expander {
            variables: &variables,
            from,
            to,
        };
        for (title, panel) in panels(dashboard) {
            let Some(targets) = panel["targets"].as_array() else {
                continue; // rows and text panels query nothing
            };
            let place = format!("{file}: panel \"{title}\"");
            let Some(panel_source) = datasource_ref(panel) else {
                report
                    .problems
                    .push(format!("{place}: has queries but no datasource"));
                continue;
            };
            let (kind, uid) = &panel_source;
            // A mixed panel names its datasources in its targets.
            if uid != MIXED {
                if let Err(problem) = check_datasource(kind, uid, &declared) {
                    report.problems.push(format!("{place}: {problem}"));
                }
            }
            let panel_source = Some(panel_source);
            for target in targets {
                let query = Query {
                    place: &place,
                    holder: target,
                    inherited: panel_source.clone(),
                    text: target["expr"]
                        .as_str()
                        .or_else(|| target["rawSql"].as_str())
                        .unwrap_or_default(),
                    format: target["format"].as_str().unwrap_or("time_series"),
                    variable: false,
                };
                self.check_query(&query, &declared, &expander, &mut report)
                    .await;
            }
        }
        report
    }

    /// Checks one query: its datasource, then its text in that datasource's language.
    /// Returns the values of the first column of a SQL query.
    async fn check_query(
        &self,
        query: &Query<'_>,
        declared: &BTreeMap<String, String>,
        expander: &Expander<'_>,
        report: &mut Report,
    ) -> Vec<String> {
        let place = query.place;
        let Some((kind, uid)) = datasource_ref(query.holder).or_else(|| query.inherited.clone())
        else {
            report.problems.push(format!("{place}: no datasource"));
            return Vec::new();
        };
        if let Err(problem) = check_datasource(&kind, &uid, declared) {
            // A target inheriting a wrong panel datasource was reported with the panel.
            if datasource_ref(query.holder).is_some() {
                report.problems.push(format!("{place}: {problem}"));
            }
            return Vec::new();
        }
        if query.text.trim().is_empty() {
            report.problems.push(format!("{place}: empty query"));
            return Vec::new();
        }
        if kind == PROMETHEUS {
            let names = if query.variable {
                promql::variable_metric_names(query.text)
            } else {
                promql::metric_names(query.text)
            };
            match names {
                Ok(names) => {
                    for name in names {
                        if let Err(problem) = self.exposition.check(&name) {
                            report.problems.push(format!("{place}: {problem}"));
                        }
                    }
                }
                Err(problem) => report.problems.push(format!("{place}: {problem}")),
            }
            return Vec::new();
        }
        if !POSTGRES.contains(&kind.as_str()) {
            report
                .problems
                .push(format!("{place}: datasource type `{kind}` is not checked"));
            return Vec::new();
        }
        let sql = match expander.expand(query.text) {
            Ok(sql) => sql,
            Err(problem) => {
                report.problems.push(format!("{place}: {problem}"));
                return Vec::new();
            }
        };
        match self.run_sql(&sql).await {
            Ok((columns, first_column)) => {
                let has_time = columns.iter().any(|c| c == "time" || c == "time_sec");
                if query.format == "time_series" && !has_time {
                    report.problems.push(format!(
                        "{place}: a time series query returns no `time` column (it returns {})",
                        columns.join(", ")
                    ));
                }
                report.sql_rows.push((place.to_owned(), first_column.len()));
                first_column
            }
            Err(problem) => {
                report.problems.push(format!(
                    "{place}: the database refuses the query: {problem}"
                ));
                Vec::new()
            }
        }
    }

    /// Runs `sql` read-only: the names of its columns, and its first column as text.
    async fn run_sql(&self, sql: &str) -> Result<(Vec<String>, Vec<String>), String> {
        let error = |e: sqlx::Error| e.to_string();
        let sql = sql.trim_end().trim_end_matches(';');
        let mut tx = self.database.begin().await.map_err(error)?;
        (&mut *tx)
            .execute("SET TRANSACTION READ ONLY")
            .await
            .map_err(error)?;
        (&mut *tx)
            .execute("SET LOCAL statement_timeout = '10s'")
            .await
            .map_err(error)?;
        // Preparing asks the server to resolve every table, column, function and type, and
        // names the result's columns even when it has no rows.
        let statement = (&mut *tx).prepare(sql).await.map_err(error)?;
        let columns: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        // Running it catches what only execution finds (a bad interval literal, a cast).
        // The first column as text, whatever its type; the line break ends a trailing comment.
        let first = quote_literal(columns.first().map_or("", String::as_str));
        let wrapped = format!("SELECT to_jsonb(q) ->> {first} FROM ({sql}\n) AS q");
        let first_column: Vec<Option<String>> = sqlx::query_scalar(&wrapped)
            .fetch_all(&mut *tx)
            .await
            .map_err(error)?;
        tx.rollback().await.map_err(error)?;
        Ok((columns, first_column.into_iter().flatten().collect()))
    }
}

/// Whether a `{type, uid}` reference names a datasource the dashboard declares, of that type.
fn check_datasource(
    kind: &str,
    uid: &str,
    declared: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(declared_kind) = variable_name(uid).and_then(|name| declared.get(name)) else {
        let names: Vec<String> = declared.keys().map(|k| format!("${{{k}}}")).collect();
        return Err(format!(
            "datasource uid `{uid}` is not one the dashboard declares ({})",
            names.join(", ")
        ));
    };
    if declared_kind != kind {
        return Err(format!(
            "datasource `{uid}` is declared as `{declared_kind}` but used as `{kind}`"
        ));
    }
    Ok(())
}

/// The datasources a dashboard declares, by the variable name panels use (`${name}`): its
/// datasource variables and its `__inputs`.
fn declared_datasources(dashboard: &Value) -> BTreeMap<String, String> {
    let mut declared = BTreeMap::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] == "datasource" {
            if let (Some(name), Some(plugin)) =
                (variable["name"].as_str(), variable["query"].as_str())
            {
                declared.insert(name.to_owned(), plugin.to_owned());
            }
        }
    }
    for input in dashboard["__inputs"].as_array().into_iter().flatten() {
        if input["type"] == "datasource" {
            if let (Some(name), Some(plugin)) = (input["name"].as_str(), input["pluginId"].as_str())
            {
                declared.insert(name.to_owned(), plugin.to_owned());
            }
        }
    }
    declared
}

/// The values a variable was saved with: `current`, else its selected or first option.
fn saved_values(variable: &Value) -> Vec<String> {
    let as_list = |value: &Value| match value {
        Value::String(text) if !text.is_empty() => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let current = as_list(&variable["current"]["value"]);
    if !current.is_empty() {
        return current;
    }
    let options = variable["options"].as_array();
    let selected = options
        .into_iter()
        .flatten()
        .find(|o| o["selected"] == true)
        .or_else(|| options.and_then(|o| o.first()));
    selected.map(|o| as_list(&o["value"])).unwrap_or_default()
}
