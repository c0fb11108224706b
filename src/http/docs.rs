//! `GET /api/docs`: a page that renders the OpenAPI document for people. It must work on an
//! operations-room machine without Internet, so it is one self-contained page built from
//! `dashboards/api-docs/` at compile time: no CDN, no download, no build step. Its style and
//! script are inlined and allowed by their hashes alone.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("../../dashboards/api-docs/index.html");
const STYLE: &str = include_str!("../../dashboards/api-docs/docs.css");
const SCRIPT: &str = include_str!("../../dashboards/api-docs/docs.js");

struct Page {
    html: String,
    policy: HeaderValue,
}

/// `'sha256-…'` of an inline element's text, as CSP matches it.
fn source_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let html = TEMPLATE
        .replacen("{{style}}", STYLE, 1)
        .replacen("{{script}}", SCRIPT, 1);
    // The page may run only its own script and style, and talk only to this service.
    let policy = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        source_hash(SCRIPT),
        source_hash(STYLE)
    );
    Page {
        html,
        policy: HeaderValue::from_str(&policy)
            .unwrap_or(HeaderValue::from_static("default-src 'none'")),
    }
});

pub fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, PAGE.policy.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        PAGE.html.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_inlines_its_style_and_script_once_and_loads_nothing_from_outside() {
        assert!(PAGE.html.contains(STYLE) && PAGE.html.contains(SCRIPT));
        assert!(!PAGE.html.contains("{{style}}") && !PAGE.html.contains("{{script}}"));
        for outside in ["http://", "https://", "//cdn"] {
            assert!(!TEMPLATE.contains(outside), "{outside} in the page");
            assert!(!STYLE.contains(outside), "{outside} in the style");
        }
        assert!(SCRIPT.contains("/api/openapi.json"));
    }

    #[test]
    fn the_policy_allows_exactly_the_inlined_script_and_style() {
        let policy = PAGE.policy.to_str().unwrap();
        assert!(policy.contains(&source_hash(SCRIPT)), "{policy}");
        assert!(policy.contains(&source_hash(STYLE)), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }

    #[test]
    fn a_source_hash_is_the_one_browsers_compute() {
        // From the CSP Level 3 definition: base64 of the SHA-256 of the element's text.
        assert_eq!(
            source_hash("alert(1)"),
            "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
    }
}
