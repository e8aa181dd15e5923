//! `/ui` — the web console — and `/favicon.ico`. Every asset is embedded in the binary: the
//! console works without any download at run time. It talks to the public `/v2.1` API with
//! the token the user signs in with; nothing here needs a token.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

const HTML: &str = include_str!("ui.html");
const JS: &str = include_str!("ui.js");
const CSS: &str = include_str!("ui.css");
const FAVICON: &[u8] = include_bytes!("favicon.ico");

/// Scripts and styles only from this server, no inline code; API calls to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An embedded asset with the console's security headers. The assets change with the
/// binary, so browsers are asked to check again rather than cache across upgrades.
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", HTML.as_bytes())
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS.as_bytes())
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", CSS.as_bytes())
}

async fn favicon() -> Response {
    asset("image/x-icon", FAVICON)
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/ui.js", get(script))
        .route("/ui/ui.css", get(style))
        .route("/favicon.ico", get(favicon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_assets() {
        for asset in ["/ui/ui.js", "/ui/ui.css", "/favicon.ico"] {
            assert!(HTML.contains(asset), "ui.html does not load {asset}");
        }
        // No inline script or style: the policy above would block it.
        assert!(!HTML.contains("<script>") && !HTML.contains("<style"));
        assert!(!HTML.contains(" style=\"") && !HTML.contains(" onclick="));
        assert!(!HTML.contains("http://") && !HTML.contains("https://cdn"));
        assert!(
            FAVICON.starts_with(&[0, 0, 1, 0]),
            "favicon.ico is an ICO file"
        );
    }
}
