//! The front door (spec §10, decision 0006): forward auth for reverse proxies and the sign-in page,
//! a small table of routes beside the API's endpoint table.
//!
//! These routes answer HTML, redirects and empty 200s, not envelopes, so they are not rows of
//! `auth_wire::api`; they are matched before it and counted in `/metrics` under their names.
//! Forward auth costs one token lookup and never a password hash.

use std::net::IpAddr;

use auth_core::{RequestContext, Session, SessionError};
use auth_wire::door::{ReturnTo, header_value, login_location};
use auth_wire::{ErrorCode, Format};
use bytes::Bytes;
use hyper::body::Body as HttpBody;
use hyper::header::{ACCEPT, HOST, HeaderName, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};

use crate::Router;
use crate::api::{PeerAddr, bearer_token, header};
use crate::respond::{Body, Failure};

mod page;

/// One route of the front door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/auth/verify`: nginx `auth_request` (2xx, 401 or 403 only).
    Verify,
    /// `/auth/forward`: Traefik `ForwardAuth`, Caddy `forward_auth` (the answer goes to the client).
    Forward,
    /// `GET /login`: the sign-in page.
    LoginPage,
    /// `GET /login/app.js`: the page's script.
    LoginScript,
    /// `GET /login/style.css`: the page's style sheet.
    LoginStyle,
    /// `POST /login/totp`: the QR code of a TOTP key.
    LoginTotp,
    /// `GET /login/oauth/start`: a social button, off to the provider with `state` and PKCE.
    OAuthStart,
    /// `GET /login/oauth/callback`: back from the provider with a code.
    OAuthCallback,
    /// `GET /login/reset?key=…`: the link of a reset mail (spec §14).
    LoginReset,
}

impl Route {
    /// Every route, in table order (the metrics' slots).
    pub(crate) const ALL: &'static [Route] = &[
        Route::Verify,
        Route::Forward,
        Route::LoginPage,
        Route::LoginScript,
        Route::LoginStyle,
        Route::LoginTotp,
        Route::OAuthStart,
        Route::OAuthCallback,
        Route::LoginReset,
    ];

    /// The route's position in [`Route::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The path, absolute.
    pub(crate) const fn path(self) -> &'static str {
        match self {
            Route::Verify => "/auth/verify",
            Route::Forward => "/auth/forward",
            Route::LoginPage => "/login",
            Route::LoginScript => "/login/app.js",
            Route::LoginStyle => "/login/style.css",
            Route::LoginTotp => "/login/totp",
            Route::OAuthStart => "/login/oauth/start",
            Route::OAuthCallback => "/login/oauth/callback",
            Route::LoginReset => "/login/reset",
        }
    }

    /// The stable name for logs and metrics.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Route::Verify => "auth_verify",
            Route::Forward => "auth_forward",
            Route::LoginPage => "login_page",
            Route::LoginScript => "login_script",
            Route::LoginStyle => "login_style",
            Route::LoginTotp => "login_totp",
            Route::OAuthStart => "login_oauth_start",
            Route::OAuthCallback => "login_oauth_callback",
            Route::LoginReset => "login_reset",
        }
    }

    /// The one method the route answers; `None` for forward auth, which answers every method
    /// because proxies check the original request under its own method.
    pub(crate) const fn method(self) -> Option<&'static str> {
        match self {
            Route::Verify | Route::Forward => None,
            Route::LoginPage
            | Route::LoginScript
            | Route::LoginStyle
            | Route::OAuthStart
            | Route::OAuthCallback
            | Route::LoginReset => Some("GET"),
            Route::LoginTotp => Some("POST"),
        }
    }

    /// The route of a request path: exact, case-insensitive, a trailing slash and a doubled leading
    /// slash ignored, as on the API.
    pub(crate) fn of_path(path: &str) -> Option<Route> {
        let path = path.trim_end_matches('/');
        let path =
            if path.starts_with("//") { path.strip_prefix('/').unwrap_or(path) } else { path };
        Route::ALL.iter().copied().find(|r| r.path().eq_ignore_ascii_case(path))
    }
}

/// What the sign-in link may point back to: the original URL when its host is the portal's, or the
/// host this request was addressed to (the proxy serves the sign-in page on that host too).
pub(crate) fn allowed_return(
    candidate: ReturnTo,
    portal_hosts: &[String],
    request_host: &str,
) -> Option<ReturnTo> {
    let Some(host) = candidate.host() else { return Some(candidate) };
    let request_host = auth_wire::door::host_of(request_host.trim()).to_ascii_lowercase();
    let ours = portal_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
        || (!request_host.is_empty() && request_host == host);
    ours.then_some(candidate)
}

impl Router {
    /// Answers a front-door route.
    pub(crate) async fn door<B>(&self, route: Route, req: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(method) = route.method()
            && req.method().as_str() != method
        {
            let mut f = Failure::new(ErrorCode::MethodNotAllowed);
            f.allow = Some(method.to_owned());
            return f.into_response(Format::Json);
        }
        let result = match route {
            Route::Verify | Route::Forward => self.forward_auth(route, req).await,
            Route::LoginPage => self.login_page(req).await,
            Route::LoginScript => Ok(page::script()),
            Route::LoginStyle => Ok(page::style()),
            Route::LoginTotp => self.login_totp(req).await,
            Route::OAuthStart => self.oauth_start(req).await,
            Route::OAuthCallback => self.oauth_callback(req).await,
            Route::LoginReset => self.reset_page(req).await,
        };
        let mut resp = result.unwrap_or_else(|f| f.into_response(Format::Json));
        if !matches!(route, Route::Verify | Route::Forward) {
            page::secure_headers(&mut resp);
        }
        resp
    }

    /// The peer, and whether it is a trusted proxy whose forwarding headers may be believed.
    pub(crate) fn peer_of<B>(&self, req: &Request<B>) -> (IpAddr, bool) {
        let peer =
            req.extensions().get::<PeerAddr>().map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
        let canonical = peer.to_canonical();
        (peer, self.shared.config.trusted_proxies.iter().any(|n| n.contains(&canonical)))
    }

    /// `/auth/verify` and `/auth/forward`: the identity of a valid token as headers, else the way
    /// to the sign-in page.
    async fn forward_auth<B>(
        &self,
        route: Route,
        req: Request<B>,
    ) -> Result<Response<Body>, Failure> {
        let (_, from_proxy) = self.peer_of(&req);
        // The original URL, believed only from a trusted proxy: anyone else could name any URL.
        let original = if from_proxy { original_url(&req) } else { None };
        let request_host = header(&req, HOST).unwrap_or("").to_owned();
        // The portal is the original URL's (Traefik sends the check to the service's own address),
        // else the one this request names.
        let host = original
            .as_ref()
            .and_then(ReturnTo::origin)
            .and_then(|o| o.split_once("://").map(|(_, a)| a.to_owned()))
            .unwrap_or_else(|| request_host.clone());
        let ctx = self.context(&req, &host).await?;
        let token = bearer_token(&req);
        let session = match token {
            Some(t) => self.shared.service.sessions().authenticate(&ctx, t.expose()).await,
            None => Err(SessionError::Unauthorized),
        };
        match session {
            Ok(session) => Ok(self.identity(&ctx, &session)),
            Err(SessionError::Unauthorized) => {
                let back =
                    original.and_then(|o| allowed_return(o, &ctx.portal.hosts, &request_host));
                let origin = back.as_ref().and_then(ReturnTo::origin);
                let location = login_location(origin.as_deref(), back.as_ref());
                let html = header(&req, ACCEPT).is_some_and(|a| a.contains("text/html"));
                let mut resp = if route == Route::Forward && html {
                    let mut r = Response::new(Body::new(Bytes::new()));
                    *r.status_mut() = StatusCode::FOUND;
                    r
                } else {
                    Failure::new(ErrorCode::Unauthorized).into_response(Format::Json)
                };
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                Ok(resp)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// 200 with the `X-Auth-…` identity headers and an empty body.
    fn identity(&self, ctx: &RequestContext, session: &Session) -> Response<Body> {
        let profile = self.shared.service.sessions().profile(session);
        let mut resp = Response::new(Body::new(Bytes::new()));
        let headers = [
            ("x-auth-user-id", profile.id.to_string()),
            ("x-auth-user-email", header_value(&profile.email)),
            ("x-auth-user-name", header_value(&profile.display_name)),
            ("x-auth-portal", header_value(&ctx.portal.name)),
            ("x-auth-is-admin", profile.is_admin.to_string()),
        ];
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(HeaderName::from_static(name), v);
            }
        }
        resp
    }
}

/// The cookie that carries the authorization-code flow from its start to its callback.
const OAUTH_COOKIE: &str = "asc_oauth";

/// How long a started social sign-in may take at the provider.
const OAUTH_COOKIE_SECS: u32 = 600;

fn oauth_cookie(value: &str, max_age: u32, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    // Lax, not Strict: the provider sends the browser back with a top-level GET from its own site.
    let cookie = format!(
        "{OAUTH_COOKIE}={value}; Max-Age={max_age}; Path=/login/oauth; HttpOnly; SameSite=Lax{secure}"
    );
    HeaderValue::from_str(&cookie).ok()
}

/// Compares two strings in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Router {
    /// `GET /login/oauth/start?provider=NAME[&return=URL]`: a fresh `state` and PKCE pair in the
    /// `asc_oauth` cookie, and a 302 to the provider's authorization endpoint.
    async fn oauth_start<B>(&self, req: Request<B>) -> Result<Response<Body>, Failure> {
        let host = header(&req, HOST).unwrap_or("").to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let (peer, _) = self.peer_of(&req);
        let secure = crate::api::came_over_tls(&req, peer, &self.shared.config.trusted_proxies);
        let ctx = self.context(&req, &host).await?;
        let providers = self.shared.service.social_providers(&ctx.portal);
        let params = auth_wire::Params::builder().query(&query).build();
        let failed = |error| {
            page::render(
                &ctx.portal,
                &providers,
                &page::PageState { error: Some(error), ..Default::default() },
            )
        };
        let Ok(request) = auth_wire::door::OAuthStartRequest::try_from(&params) else {
            return Ok(failed("oauth_failed"));
        };
        let back = request.return_to.and_then(|r| allowed_return(r, &ctx.portal.hosts, &host));
        let started = match self.shared.service.oauth_start(&ctx.portal, &request.provider).await {
            Ok(Some(started)) => started,
            Ok(None) => return Ok(failed("oauth_failed")),
            Err(e) => {
                tracing::warn!(provider = %request.provider, error = %e, "cannot start a social sign-in");
                return Ok(failed("provider_unavailable"));
            }
        };
        let (url, pkce) = started;
        let cookie = auth_wire::door::OAuthCookie {
            state: pkce.state.expose().to_owned(),
            verifier: pkce.verifier.expose().to_owned(),
            provider: request.provider.clone(),
            return_to: back.map(|b| b.as_str().to_owned()),
        };
        let mut resp = Response::new(Body::new(Bytes::new()));
        *resp.status_mut() = StatusCode::FOUND;
        let location = HeaderValue::from_str(&url).map_err(|_| {
            Failure::with_message(ErrorCode::Internal, "unusable authorization URL")
        })?;
        resp.headers_mut().insert(LOCATION, location);
        if let Some(v) = oauth_cookie(&cookie.encode(), OAUTH_COOKIE_SECS, secure) {
            resp.headers_mut().append(hyper::header::SET_COOKIE, v);
        }
        Ok(resp)
    }

    /// `GET /login/oauth/callback?code=…&state=…`: the state must be the cookie's; then the page
    /// finishes the login through the API (`provider`, `codeOAuth`, `codeVerifier`), so the social
    /// login's throttles and second factors apply as to any client.
    async fn oauth_callback<B>(&self, req: Request<B>) -> Result<Response<Body>, Failure> {
        let host = header(&req, HOST).unwrap_or("").to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let (peer, _) = self.peer_of(&req);
        let secure = crate::api::came_over_tls(&req, peer, &self.shared.config.trusted_proxies);
        let cookie =
            crate::api::cookie(&req, OAUTH_COOKIE).and_then(auth_wire::door::OAuthCookie::decode);
        let ctx = self.context(&req, &host).await?;
        let providers = self.shared.service.social_providers(&ctx.portal);
        let params = auth_wire::Params::builder().query(&query).build();
        let answer = auth_wire::door::OAuthCallbackRequest::try_from(&params).unwrap_or_default();
        let matched = match (&cookie, &answer.state, &answer.code, &answer.error) {
            (Some(c), Some(state), Some(code), None) if same_secret(&c.state, state) => {
                Some((c, code))
            }
            _ => None,
        };
        let mut resp = match matched {
            Some((c, code)) => {
                let back = c
                    .return_to
                    .as_deref()
                    .and_then(ReturnTo::parse)
                    .and_then(|r| allowed_return(r, &ctx.portal.hosts, &host));
                let state = page::PageState {
                    return_to: back.as_ref().map(ReturnTo::as_str),
                    oauth: Some((c.provider.as_str(), code.as_str(), c.verifier.as_str())),
                    ..Default::default()
                };
                page::render(&ctx.portal, &providers, &state)
            }
            None => {
                // A state that is not this browser's is a forged or replayed callback (or an old tab).
                tracing::info!(provider_error = ?answer.error, "social sign-in callback refused");
                let state = page::PageState { error: Some("oauth_failed"), ..Default::default() };
                page::render(&ctx.portal, &providers, &state)
            }
        };
        // One callback per start: the cookie is spent either way.
        if let Some(v) = oauth_cookie("", 0, secure) {
            resp.headers_mut().append(hyper::header::SET_COOKIE, v);
        }
        Ok(resp)
    }
}

/// The URL the proxy is checking: `X-Original-URL` (nginx), else `X-Forwarded-Proto` +
/// `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy). Only a parsable http(s) URL counts.
fn original_url<B>(req: &Request<B>) -> Option<ReturnTo> {
    if let Some(url) = header(req, HeaderName::from_static("x-original-url")) {
        return ReturnTo::parse(url).filter(|r| r.host().is_some());
    }
    let proto = header(req, HeaderName::from_static("x-forwarded-proto"))?;
    let host = header(req, HeaderName::from_static("x-forwarded-host"))?;
    let uri = header(req, HeaderName::from_static("x-forwarded-uri")).unwrap_or("/");
    let proto = proto.split(',').next().unwrap_or("").trim();
    let host = host.split(',').next().unwrap_or("").trim();
    if !uri.starts_with('/') {
        return None;
    }
    ReturnTo::parse(&format!("{proto}://{host}{uri}")).filter(|r| r.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_api_paths() {
        assert_eq!(Route::of_path("/auth/verify"), Some(Route::Verify));
        assert_eq!(Route::of_path("//Auth/Verify/"), Some(Route::Verify));
        assert_eq!(Route::of_path("/login"), Some(Route::LoginPage));
        assert_eq!(Route::of_path("/login/"), Some(Route::LoginPage));
        assert_eq!(Route::of_path("/login/other"), None);
        assert_eq!(Route::of_path("/auth/verifyx"), None);
        for r in Route::ALL {
            assert_eq!(Route::of_path(r.path()), Some(*r));
        }
    }

    #[test]
    fn return_urls_stay_on_the_portal() {
        let hosts = vec!["portal.example".to_owned()];
        let check = |url: &str, host: &str| {
            ReturnTo::parse(url).and_then(|r| allowed_return(r, &hosts, host)).is_some()
        };
        assert!(check("https://portal.example/docs", "other.example"));
        assert!(check("https://app.example:8443/x", "app.example:8443"));
        assert!(check("/docs", "portal.example"));
        assert!(!check("https://evil.example/", "portal.example"));
        assert!(!check("https://evil.example/", ""));
        assert!(!check("https://portal.example.evil.example/", "portal.example"));
    }
}
