//! The rules of a Prometheus rule file, read line by line: the YAML this project writes
//! (`- alert:` or `- record:` entries, `expr:` inline or as a `|` / `>` block). Anything else
//! fails the count check rather than passing unread.

/// One alerting or recording rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub expr: String,
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A YAML scalar written inline: plain, 'single' or "double" quoted.
fn inline_scalar(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return inner.replace("\\\"", "\"").replace("\\\\", "\\");
    }
    raw.to_owned()
}

/// The rules of `text`, each with its expression.
pub fn rules(text: &str) -> Result<Vec<Rule>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut names: Vec<String> = Vec::new();
    let mut exprs: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let trimmed = line.trim_start();
        i += 1;
        let entry = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        if let Some(name) = entry
            .strip_prefix("alert:")
            .or_else(|| entry.strip_prefix("record:"))
        {
            names.push(inline_scalar(name));
            continue;
        }
        let Some(value) = entry.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let key_indent = indentation(line);
            let mut block = Vec::new();
            while let Some(next) = lines.get(i) {
                if !next.trim().is_empty() && indentation(next) <= key_indent {
                    break;
                }
                block.push(next.trim());
                i += 1;
            }
            exprs.push(block.join("\n").trim().to_owned());
        } else {
            exprs.push(inline_scalar(value));
        }
    }
    if names.len() != exprs.len() {
        return Err(format!(
            "{} rules but {} expressions: the file is not in the expected layout",
            names.len(),
            exprs.len()
        ));
    }
    Ok(names
        .into_iter()
        .zip(exprs)
        .map(|(name, expr)| Rule { name, expr })
        .collect())
}

/// The alert names a promtool test file expects results for (`alertname:` keys).
pub fn tested_alerts(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("alertname:"))
        .map(inline_scalar)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_block_expressions_are_read_with_their_rule() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n\
            \n      - alert: B\n        expr: |\n          sum(x)\n            > 1\n        labels:\n          severity: warning\n\
            \n      - record: job:y:rate5m\n        expr: 'rate(y[5m])'\n";
        let rules = rules(text).unwrap();
        assert_eq!(
            rules,
            [
                Rule {
                    name: "A".into(),
                    expr: "up == 0".into()
                },
                Rule {
                    name: "B".into(),
                    expr: "sum(x)\n> 1".into()
                },
                Rule {
                    name: "job:y:rate5m".into(),
                    expr: "rate(y[5m])".into()
                },
            ]
        );
    }

    #[test]
    fn a_rule_without_an_expression_is_an_error() {
        assert!(rules("- alert: A\n  for: 1m\n").is_err());
    }
}
