//! The few InfluxQL statements `/query` answers, read as InfluxQL writes them: keywords in any
//! case, identifiers bare or double-quoted (`"my db"`, with `\"` inside), statements separated
//! by `;` (influxdata/influxql `scanner.go` and `parser.go`).

use thiserror::Error;

/// A statement `/query` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    Databases,
    RetentionPolicies { on: Option<String> },
    Measurements { on: Option<String> },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatementError {
    /// A statement this service does not run, as written.
    #[error(
        "statement `{0}` is not supported: this service answers only SHOW DATABASES, \
         SHOW RETENTION POLICIES and SHOW MEASUREMENTS; values are read through \
         /api/v1/observations"
    )]
    Unsupported(String),
    #[error("error parsing query: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word: a keyword or an identifier.
    Word(String),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// Anything else: strings, numbers, regexes, operators. Only its presence matters.
    Other,
}

/// The statements of `q`, in order; empty statements (`;;`) are skipped as InfluxDB does.
pub fn parse(q: &str) -> Result<Vec<Show>, StatementError> {
    let mut statements = Vec::new();
    for text in split(q)? {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let tokens = tokens(trimmed);
        statements
            .push(statement(&tokens).ok_or_else(|| StatementError::Unsupported(shorten(trimmed)))?);
    }
    if statements.is_empty() {
        return Err(StatementError::Malformed(
            "found EOF, expected a statement".into(),
        ));
    }
    Ok(statements)
}

/// A statement as quoted in an error: one line, at most 200 characters.
fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &one_line[..end]),
        None => one_line,
    }
}

/// `q` cut at the `;` that stand outside quotes and regexes.
fn split(q: &str) -> Result<Vec<&str>, StatementError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut chars = q.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            ';' => {
                parts.push(&q[start..at]);
                start = at + 1;
            }
            '"' | '\'' => {
                let mut closed = false;
                while let Some((_, inner)) = chars.next() {
                    if inner == '\\' {
                        chars.next();
                    } else if inner == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    let what = if c == '"' { "identifier" } else { "string" };
                    return Err(StatementError::Malformed(format!(
                        "unterminated quoted {what} at offset {at}"
                    )));
                }
            }
            _ => {}
        }
    }
    parts.push(&q[start..]);
    Ok(parts)
}

fn tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(word));
        } else if c == '"' {
            chars.next();
            let mut identifier = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(escaped) => identifier.push(escaped),
                        None => break,
                    },
                    Some('"') | None => break,
                    Some(other) => identifier.push(other),
                }
            }
            tokens.push(Token::Quoted(identifier));
        } else if c == '\'' {
            chars.next();
            while let Some(inner) = chars.next() {
                if inner == '\\' {
                    chars.next();
                } else if inner == '\'' {
                    break;
                }
            }
            tokens.push(Token::Other);
        } else {
            chars.next();
            tokens.push(Token::Other);
        }
    }
    tokens
}

fn is(token: Option<&Token>, keyword: &str) -> bool {
    matches!(token, Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword))
}

/// The statement the tokens spell, or `None` when it is not one `/query` answers.
fn statement(tokens: &[Token]) -> Option<Show> {
    if !is(tokens.first(), "show") {
        return None;
    }
    let rest = &tokens[1..];
    if is(rest.first(), "databases") {
        return (rest.len() == 1).then_some(Show::Databases);
    }
    if is(rest.first(), "retention") && is(rest.get(1), "policies") {
        let on = on_clause(&rest[2..])?;
        return Some(Show::RetentionPolicies { on });
    }
    if is(rest.first(), "measurements") {
        let on = on_clause(&rest[1..])?;
        return Some(Show::Measurements { on });
    }
    None
}

/// Nothing, or `ON <database>`; `None` when anything else follows (filters, limits), which
/// is refused rather than ignored.
fn on_clause(tokens: &[Token]) -> Option<Option<String>> {
    match tokens {
        [] => Some(None),
        [on, Token::Word(name) | Token::Quoted(name)] if is(Some(on), "on") => {
            Some(Some(name.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Show, StatementError};

    #[test]
    fn the_statements_clients_send_on_connect_are_read_in_any_case() {
        assert_eq!(parse("SHOW DATABASES"), Ok(vec![Show::Databases]));
        assert_eq!(
            parse("show databases;\n  Show Measurements ; "),
            Ok(vec![Show::Databases, Show::Measurements { on: None }])
        );
        assert_eq!(
            parse(r#"SHOW RETENTION POLICIES ON "quan \"trac\"; x""#),
            Ok(vec![Show::RetentionPolicies {
                on: Some(r#"quan "trac"; x"#.to_owned())
            }])
        );
        assert_eq!(
            parse("SHOW MEASUREMENTS ON telegraf"),
            Ok(vec![Show::Measurements {
                on: Some("telegraf".to_owned())
            }])
        );
    }

    #[test]
    fn other_statements_are_refused_by_name() {
        let refused = parse("SHOW DATABASES; DROP DATABASE ktxh").unwrap_err();
        assert_eq!(
            refused,
            StatementError::Unsupported("DROP DATABASE ktxh".to_owned())
        );
        assert!(refused.to_string().contains("`DROP DATABASE ktxh`"));
        for q in [
            "SELECT * FROM cpu",
            "SHOW MEASUREMENTS WITH MEASUREMENT =~ /cpu/",
            "SHOW MEASUREMENTS LIMIT 1",
            "SHOW DATABASES x",
            "SHOW TAG KEYS",
            "CREATE DATABASE quan_trac",
        ] {
            assert!(
                matches!(parse(q), Err(StatementError::Unsupported(_))),
                "{q}"
            );
        }
    }

    #[test]
    fn unterminated_quotes_and_empty_queries_are_malformed() {
        assert!(matches!(
            parse(r#"SHOW RETENTION POLICIES ON "x"#),
            Err(StatementError::Malformed(_))
        ));
        assert!(matches!(parse(" ; ;"), Err(StatementError::Malformed(_))));
    }
}
