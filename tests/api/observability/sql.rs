//! Grafana's interpolation of SQL queries: its macros (`$__timeFilter(column)`, `$__interval`,
//! ...) and variables (`$name`, `${name:format}`, `[[name]]`), as the PostgreSQL datasource
//! expands them, so that the database sees what it would see from Grafana.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// What `$__interval` expands to: any interval Grafana could choose does for checking.
const INTERVAL: &str = "1h";
const INTERVAL_MS: &str = "3600000";

/// A dashboard variable as the checker resolves it.
#[derive(Debug, Clone)]
pub struct Variable {
    pub values: Vec<String>,
    /// Multi-value and include-all variables are quoted by Grafana's SQL interpolation.
    pub multi: bool,
}

/// `now`, `now-6h`, `now-2y`: the forms the dashboards use.
pub fn relative_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if text == "now" {
        return Ok(now);
    }
    let offset = text
        .strip_prefix("now-")
        .ok_or_else(|| format!("time `{text}` is not `now` or `now-<n><unit>`"))?;
    let unit_at = offset
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("time `{text}` has no unit"))?;
    let amount: i64 = offset[..unit_at]
        .parse()
        .map_err(|_| format!("time `{text}` has no amount"))?;
    let span = match &offset[unit_at..] {
        "s" => Duration::seconds(amount),
        "m" => Duration::minutes(amount),
        "h" => Duration::hours(amount),
        "d" => Duration::days(amount),
        "w" => Duration::weeks(amount),
        "M" => Duration::days(amount * 31),
        "y" => Duration::days(amount * 366),
        unit => return Err(format!("time `{text}` has an unknown unit `{unit}`")),
    };
    Ok(now - span)
}

/// Grafana's quoting of a SQL literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl Variable {
    /// The value as Grafana's SQL datasources interpolate it, in the given `${name:format}`.
    fn interpolate(&self, format: Option<&str>) -> Result<String, String> {
        let quoted = || {
            self.values
                .iter()
                .map(|v| quote_literal(v))
                .collect::<Vec<_>>()
                .join(",")
        };
        match format {
            None if self.multi => Ok(quoted()),
            None => Ok(self.values.join(",").replace('\'', "''")),
            Some("csv" | "raw") => Ok(self.values.join(",")),
            Some("singlequote" | "sqlstring") => Ok(quoted()),
            Some(other) => Err(format!("unsupported variable format `{other}`")),
        }
    }
}

/// The byte offset of the `)` that closes a call whose arguments start `text`.
fn closing_parenthesis(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Expands the queries of one dashboard: its variables and its time range.
pub struct Expander<'a> {
    pub variables: &'a BTreeMap<String, Variable>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Expander<'_> {
    /// `sql` with Grafana's macros and variables expanded.
    pub fn expand(&self, sql: &str) -> Result<String, String> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find(['$', '[']) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("$__") {
                rest = self.macro_call(after, &mut out)?;
            } else if let Some(after) = rest.strip_prefix("${") {
                let end = after.find('}').ok_or("unterminated `${`")?;
                let (name, format) = match after[..end].split_once(':') {
                    Some((name, format)) => (name, Some(format)),
                    None => (&after[..end], None),
                };
                out.push_str(&self.variable(name)?.interpolate(format)?);
                rest = &after[end + 1..];
            } else if let Some(after) = rest.strip_prefix("[[") {
                let end = after.find("]]").ok_or("unterminated `[[`")?;
                let (name, format) = match after[..end].split_once(':') {
                    Some((name, format)) => (name, Some(format)),
                    None => (&after[..end], None),
                };
                out.push_str(&self.variable(name)?.interpolate(format)?);
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('$') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if end == 0 {
                    out.push('$'); // `$$` quoting or a lone dollar: not Grafana's
                } else {
                    out.push_str(&self.variable(&after[..end])?.interpolate(None)?);
                }
                rest = &after[end..];
            } else {
                out.push('[');
                rest = &rest[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn variable(&self, name: &str) -> Result<&Variable, String> {
        let variable = self
            .variables
            .get(name)
            .ok_or_else(|| format!("unknown variable `${name}`"))?;
        if variable.values.is_empty() {
            return Err(format!(
                "variable `${name}` has no value to check the query with"
            ));
        }
        Ok(variable)
    }

    /// Expands the macro at the start of `text` (after `$__`) into `out`; returns the rest.
    fn macro_call<'t>(&self, text: &'t str, out: &mut String) -> Result<&'t str, String> {
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        let rest = &text[name_end..];
        // RFC 3339 with fractional seconds, as Grafana's SQL macros write it.
        let literal =
            |at: DateTime<Utc>| format!("'{}'", at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        let simple = match name {
            "interval" => Some(INTERVAL.to_owned()),
            "interval_ms" => Some(INTERVAL_MS.to_owned()),
            "from" => Some(self.from.timestamp_millis().to_string()),
            "to" => Some(self.to.timestamp_millis().to_string()),
            _ => None,
        };
        if let Some(value) = simple {
            out.push_str(&value);
            return Ok(rest);
        }
        let arguments = rest
            .strip_prefix('(')
            .ok_or_else(|| format!("unsupported macro `$__{name}`"))?;
        let close =
            closing_parenthesis(arguments).ok_or_else(|| format!("unterminated `$__{name}(`"))?;
        let argument = arguments[..close].trim();
        let expansion = match name {
            "timeFilter" => format!(
                "{argument} BETWEEN {} AND {}",
                literal(self.from),
                literal(self.to)
            ),
            "timeFrom" => literal(self.from),
            "timeTo" => literal(self.to),
            "unixEpochFilter" => format!(
                "{argument} >= {} AND {argument} <= {}",
                self.from.timestamp(),
                self.to.timestamp()
            ),
            "unixEpochFrom" => self.from.timestamp().to_string(),
            "unixEpochTo" => self.to.timestamp().to_string(),
            other => return Err(format!("unsupported macro `$__{other}`")),
        };
        out.push_str(&expansion);
        Ok(&arguments[close + 1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expander(variables: &BTreeMap<String, Variable>) -> Expander<'_> {
        Expander {
            variables,
            from: "2025-01-01T00:00:00Z".parse().unwrap(),
            to: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn macros_and_variables_expand_as_grafana_interpolates_them_for_sql() {
        let variables = BTreeMap::from([
            (
                "unit".to_owned(),
                Variable {
                    values: vec!["HCM".into(), "O'NE".into()],
                    multi: true,
                },
            ),
            (
                "indicator".to_owned(),
                Variable {
                    values: vec!["GRDP".into()],
                    multi: false,
                },
            ),
        ]);
        let sql =
            "SELECT time_bucket('$__interval', t) FROM o WHERE $__timeFilter(coalesce(t, s)) \
                   AND i = '$indicator' AND u IN ($unit) AND v = ${indicator:sqlstring}";
        assert_eq!(
            expander(&variables).expand(sql).unwrap(),
            "SELECT time_bucket('1h', t) FROM o WHERE coalesce(t, s) BETWEEN '2025-01-01T00:00:00Z' AND \
             '2026-01-01T00:00:00Z' AND i = 'GRDP' AND u IN ('HCM','O''NE') AND v = 'GRDP'"
        );
    }

    #[test]
    fn an_unknown_variable_or_macro_is_a_problem() {
        let variables = BTreeMap::new();
        assert!(expander(&variables).expand("SELECT '$indicatr'").is_err());
        assert!(expander(&variables)
            .expand("SELECT $__timeGroup(t, '1h')")
            .is_err());
    }

    #[test]
    fn relative_times_are_read() {
        let now: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(relative_time("now", now).unwrap(), now);
        assert_eq!(
            relative_time("now-6h", now).unwrap(),
            now - Duration::hours(6)
        );
        assert!(relative_time("now/d", now).is_err());
    }
}
