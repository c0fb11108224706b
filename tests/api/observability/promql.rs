//! The metric names a PromQL expression reads, found by a small tokenizer: enough of PromQL to
//! tell metric names from functions, aggregations, keywords, label names, strings, numbers,
//! durations and Grafana variables. Anything it cannot place is an error, never a silent pass.

/// Aggregation operators: `sum by (x) (...)` or `sum(...) by (x)`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// PromQL functions (Prometheus 2.x and 3.x), plus `start` and `end` of the `@` modifier.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "end",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "start",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Other keywords: binary operators, modifiers and number literals.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

struct Scanner<'a> {
    chars: Vec<char>,
    at: usize,
    expr: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(expr: &'a str) -> Self {
        Self {
            chars: expr.chars().collect(),
            at: 0,
            expr,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at character {} of `{}`", self.at, self.expr)
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.at += 1;
            } else if c == '#' {
                // A comment runs to the end of the line.
                while self.peek().is_some_and(|c| c != '\n') {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    fn next_non_space(&mut self) -> Option<char> {
        self.skip_space();
        self.peek()
    }

    fn ident(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_ident_char) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// A quoted string starting at the current quote; returns its content.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or_else(|| self.error("expected a string"))?;
        self.at += 1;
        let mut content = String::new();
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                '\\' if quote != '`' => {
                    if let Some(escaped) = self.peek() {
                        content.push(escaped);
                        self.at += 1;
                    }
                }
                c if c == quote => return Ok(content),
                c => content.push(c),
            }
        }
        Err(self.error("unterminated string"))
    }

    /// Skips from an opening bracket to its match, strings included.
    fn skip_balanced(&mut self, open: char, close: char) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                '"' | '\'' | '`' => {
                    self.string()?;
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.at += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        Err(self.error(&format!("unbalanced `{open}`")))
    }

    /// Whether `by` or `without` comes next (after an aggregation operator).
    fn grouping_follows(&mut self) -> bool {
        let start = self.at;
        let word = self.ident().to_ascii_lowercase();
        self.at = start;
        word == "by" || word == "without"
    }

    /// A Grafana variable: `$name`, `${name...}` or `[[name]]`.
    fn variable(&mut self) -> Result<(), String> {
        if self.peek() == Some('[') {
            return self.skip_balanced('[', ']');
        }
        self.at += 1; // `$`
        if self.peek() == Some('{') {
            return self.skip_balanced('{', '}');
        }
        self.ident();
        Ok(())
    }

    /// Label matchers; a `__name__` equality names a metric.
    fn matchers(&mut self, names: &mut Vec<String>) -> Result<(), String> {
        self.at += 1; // `{`
        loop {
            match self.next_non_space() {
                None => return Err(self.error("unterminated `{`")),
                Some('}') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(',') => self.at += 1,
                Some('"' | '\'' | '`') => {
                    // A bare string is a metric name (Prometheus 3: `{"metric.name"}`).
                    names.push(self.string()?);
                }
                Some(c) if is_ident_start(c) => {
                    let label = self.ident();
                    let op_start = self.next_non_space().map(|_| self.at);
                    while self.peek().is_some_and(|c| matches!(c, '=' | '!' | '~')) {
                        self.at += 1;
                    }
                    let op: String = op_start
                        .map(|start| self.chars[start..self.at].iter().collect())
                        .unwrap_or_default();
                    if op.is_empty() {
                        return Err(self.error(&format!("label `{label}` without an operator")));
                    }
                    match self.next_non_space() {
                        Some('"' | '\'' | '`') => {
                            let value = self.string()?;
                            if label == "__name__" && op == "=" {
                                names.push(value);
                            }
                        }
                        _ => return Err(self.error("expected a label value")),
                    }
                }
                Some(_) => return Err(self.error("unexpected character in label matchers")),
            }
        }
    }
}

/// The metric names `expr` reads, in order of appearance, each once.
pub fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let mut scanner = Scanner::new(expr);
    let mut names: Vec<String> = Vec::new();
    while let Some(c) = scanner.next_non_space() {
        match c {
            '"' | '\'' | '`' => {
                scanner.string()?;
            }
            '$' => scanner.variable()?,
            '[' if scanner.chars.get(scanner.at + 1) == Some(&'[') => scanner.variable()?,
            // Ranges and subqueries: durations and Grafana interval variables only.
            '[' => scanner.skip_balanced('[', ']')?,
            '{' => scanner.matchers(&mut names)?,
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers, durations (5m, 1h30m), exponents and hexadecimal.
                while scanner
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                {
                    scanner.at += 1;
                }
            }
            c if is_ident_start(c) => {
                let ident = scanner.ident();
                let lower = ident.to_ascii_lowercase();
                let next = scanner.next_non_space();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if next == Some('(') {
                        scanner.skip_balanced('(', ')')?;
                    }
                } else if KEYWORDS.contains(&lower.as_str()) {
                    // an operator or a modifier: nothing to read
                } else if AGGREGATIONS.contains(&lower.as_str()) {
                    let is_aggregation = next == Some('(') || scanner.grouping_follows();
                    if !is_aggregation {
                        names.push(ident);
                    }
                } else if next == Some('(') {
                    if !FUNCTIONS.contains(&ident.as_str()) {
                        return Err(format!("unknown function `{ident}` in `{expr}`"));
                    }
                } else {
                    names.push(ident);
                }
            }
            _ => scanner.at += 1, // operators, commas, parentheses
        }
    }
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

/// The metric names a Grafana Prometheus variable query reads: `label_values(metric, label)`,
/// `query_result(expr)`, or a bare expression; `label_names()`, `label_values(label)` and
/// `metrics(regex)` read none.
pub fn variable_metric_names(query: &str) -> Result<Vec<String>, String> {
    let query = query.trim();
    let call = |name: &str| {
        query
            .strip_prefix(name)
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
    };
    if let Some(arguments) = call("label_values") {
        // The label is the last argument: the metric selector before it may hold commas.
        return match top_level_comma(arguments) {
            Some(comma) => metric_names(&arguments[..comma]),
            None => Ok(Vec::new()),
        };
    }
    if let Some(expr) = call("query_result") {
        return metric_names(expr);
    }
    if call("label_names").is_some() || call("metrics").is_some() {
        return Ok(Vec::new());
    }
    metric_names(query)
}

/// The byte offset of the last comma outside brackets and strings.
fn top_level_comma(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut last = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '{' | '[') => depth += 1,
            (None, ')' | '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn functions_aggregations_label_lists_and_ranges_are_not_metric_names() {
        assert_eq!(
            names(
                r#"histogram_quantile(0.99, sum by (route, le) (rate(ktxh_http_request_duration_seconds_bucket{job=~"$job", route!="/metrics"}[$__rate_interval])))"#
            ),
            ["ktxh_http_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names("sum(rate(a_total[5m])) by (instance) / ignoring(le) group_left b offset 1h"),
            ["a_total", "b"]
        );
        assert_eq!(
            names("count without (feed) (x) and on (job) y unless z > bool 1e3"),
            ["x", "y", "z"]
        );
    }

    #[test]
    fn a_name_in_a_matcher_or_after_an_aggregation_keyword_is_found() {
        assert_eq!(names(r#"{__name__="up", job="ktxh"}"#), ["up"]);
        assert_eq!(names("time() - max(last_seen)"), ["last_seen"]);
        // `sum` here is a metric: no parenthesis and no grouping follows.
        assert_eq!(names("sum + 1"), ["sum"]);
    }

    #[test]
    fn strings_comments_and_variables_are_skipped() {
        assert_eq!(
            names("label_replace(m, \"dst\", \"$1\", \"src\", \"(.*)\") # by (x) not_a_metric\n"),
            ["m"]
        );
        assert_eq!(names("${metric_var} + [[other]] + real"), ["real"]);
    }

    #[test]
    fn a_misspelt_function_is_an_error() {
        let error = metric_names("rat(x[5m])").unwrap_err();
        assert!(error.contains("unknown function `rat`"), "{error}");
    }

    #[test]
    fn variable_queries_read_the_metric_and_not_the_label() {
        assert_eq!(
            variable_metric_names(
                r#"label_values(ktxh_build_info{job=~"$job", a="x,y"}, instance)"#
            )
            .unwrap(),
            ["ktxh_build_info"]
        );
        assert!(variable_metric_names("label_values(job)")
            .unwrap()
            .is_empty());
        assert_eq!(
            variable_metric_names("query_result(topk(5, m))").unwrap(),
            ["m"]
        );
    }
}
