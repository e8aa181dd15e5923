//! Who is calling, and what they may do.
//!
//! Two kinds of token reach `/v2.1`:
//! - `HOOKRELAY_API_TOKEN`, the global admin token: every project, every operation;
//! - a project token (`POST /projects/{p}/tokens`): its own project only, within its role.
//!   A project token is looked up in Redis by its SHA-256 hash on every request (nothing is
//!   cached, so a deleted token stops working at once in every process).
//!
//! What each role may do is decided here, in one place, from the route that matched:
//! `GET` needs `viewer`; any other method needs `editor`; the signing-secret endpoints and
//! the token endpoints need `admin`. Another project answers 404, as if it did not exist.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookrelay_core::token::{Role, hash_token};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::ProducerError;

/// The caller of a `/v2.1` request, put in the request's extensions by [`require_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The global admin token.
    Global,
    /// A project token.
    Project {
        /// The one project it reaches.
        project: String,
        /// The token's name.
        name: String,
        /// Its role there.
        role: Role,
    },
}

impl Caller {
    /// The caller's role in the project of the request (the global token is admin
    /// everywhere; a project token is only ever let through to its own project).
    pub fn role(&self) -> Role {
        match self {
            Caller::Global => Role::Admin,
            Caller::Project { role, .. } => *role,
        }
    }

    /// Whether the caller is an admin of the request's project.
    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ProducerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ProducerError::Internal("request reached a handler unauthenticated".into())
        })
    }
}

/// The role a route needs: `GET` reads (viewer), other methods change (editor); secrets
/// and tokens are admin's.
pub fn required_role(method: &Method, route: &str) -> Role {
    let admin_only = route.contains("/tokens")
        || route.ends_with("/secret")
        || route.ends_with("/secret/rotate");
    if admin_only {
        Role::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else {
        Role::Editor
    }
}

/// Authenticates the request and checks that the caller may use this route on this
/// project; runs before the body is read.
pub(super) async fn require_token(
    State(state): State<AppState>,
    route: Option<MatchedPath>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req.headers().get(header::AUTHORIZATION);
    let caller = match authenticate(&state, header).await {
        Ok(caller) => caller,
        Err(e) => {
            if header.is_some() && matches!(e, ProducerError::Unauthorized(_)) {
                tracing::warn!(method = %req.method(), path = %req.uri().path(), "request refused: wrong API token or malformed Authorization header");
            }
            return e.into_response();
        }
    };
    if let Caller::Project {
        project,
        name,
        role,
    } = &caller
    {
        let asked = params.as_ref().ok().and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == "project")
                .map(|(_, v)| v.to_owned())
        });
        // Every /v2.1 route is under /projects/{project}; one that is not is no project
        // token's business.
        if asked.as_deref() != Some(project.as_str()) {
            let shown = asked.unwrap_or_default();
            return ProducerError::NotFound(format!("project {shown:?} not found")).into_response();
        }
        let route = route.as_ref().map(MatchedPath::as_str).unwrap_or_default();
        let needed = required_role(req.method(), route);
        if *role < needed {
            tracing::info!(project = %project, token = %name, role = %role, needed = %needed, method = %req.method(), route, "request refused: role too weak");
            return ProducerError::Forbidden(format!(
                "this token's role is {role}; this operation needs {needed}"
            ))
            .into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Who the `Authorization` header says the caller is.
async fn authenticate(
    state: &AppState,
    header: Option<&HeaderValue>,
) -> Result<Caller, ProducerError> {
    let token = bearer(header)?;
    // Compared as SHA-256 digests, in constant time: neither how much of the token is
    // right nor its length shows in the time taken.
    let hash = hash_token(token);
    let expected = &state.settings().api_token;
    let global: bool = hash
        .as_bytes()
        .ct_eq(hash_token(expected).as_bytes())
        .into();
    if global && !expected.is_empty() {
        return Ok(Caller::Global);
    }
    // Looked up by hash: the time taken depends on the hash, not on how much of the
    // token is right.
    match state.tokens().grant(&hash).await? {
        Some(grant) => Ok(Caller::Project {
            project: grant.project,
            name: grant.name,
            role: grant.role,
        }),
        None => Err(ProducerError::Unauthorized("invalid API token".into())),
    }
}

/// The token of `Authorization: Token <t>` or `Bearer <t>`.
pub(super) fn bearer(header: Option<&HeaderValue>) -> Result<&str, ProducerError> {
    const USAGE: &str = "send 'Authorization: Token <token>' or 'Authorization: Bearer <token>'";
    let Some(value) = header else {
        return Err(ProducerError::Unauthorized(format!(
            "missing Authorization header; {USAGE}"
        )));
    };
    let malformed =
        || ProducerError::Unauthorized(format!("malformed Authorization header; {USAGE}"));
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ProducerError::Unauthorized("invalid API token".into()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, want: Option<&str>) {
        let value = header.map(|h| HeaderValue::from_str(h).expect("header"));
        assert_eq!(bearer(value.as_ref()).ok(), want, "{header:?}");
    }

    #[test]
    fn token_schemes() {
        check(Some("Token s3cret"), Some("s3cret"));
        check(Some("Bearer s3cret"), Some("s3cret"));
        check(Some("bearer s3cret"), Some("s3cret"));
        check(Some("TOKEN  s3cret "), Some("s3cret"));
        check(Some("Basic s3cret"), None);
        check(Some("s3cret"), None);
        check(Some("Token "), None);
        check(None, None);
    }

    fn role(method: Method, route: &str, want: Role) {
        assert_eq!(required_role(&method, route), want, "{method} {route}");
    }

    #[test]
    fn roles_of_routes() {
        role(
            Method::GET,
            "/v2.1/projects/{project}/webhooks",
            Role::Viewer,
        );
        role(
            Method::GET,
            "/v2.1/projects/{project}/webhooks/{name}",
            Role::Viewer,
        );
        role(
            Method::GET,
            "/v2.1/projects/{project}/deliveries/{id}",
            Role::Viewer,
        );
        role(
            Method::GET,
            "/v2.1/projects/{project}/webhooks-tests/{id}",
            Role::Viewer,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/webhooks",
            Role::Editor,
        );
        role(
            Method::PATCH,
            "/v2.1/projects/{project}/webhooks/{name}",
            Role::Editor,
        );
        role(
            Method::DELETE,
            "/v2.1/projects/{project}/webhooks/{name}",
            Role::Editor,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/events",
            Role::Editor,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/webhooks-tests",
            Role::Editor,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/deliveries/{id}/redeliver",
            Role::Editor,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/webhooks/{name}/recover",
            Role::Editor,
        );
        role(
            Method::GET,
            "/v2.1/projects/{project}/webhooks/{name}/secret",
            Role::Admin,
        );
        role(
            Method::POST,
            "/v2.1/projects/{project}/webhooks/{name}/secret/rotate",
            Role::Admin,
        );
        role(Method::GET, "/v2.1/projects/{project}/tokens", Role::Admin);
        role(Method::POST, "/v2.1/projects/{project}/tokens", Role::Admin);
        role(
            Method::DELETE,
            "/v2.1/projects/{project}/tokens/{name}",
            Role::Admin,
        );
    }
}
