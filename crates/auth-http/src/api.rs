//! The request path: route, negotiate, read the body within its limits, resolve the portal, call the
//! service, write the envelope. One function per endpoint, each a few lines over `auth-core`.

use std::net::{IpAddr, SocketAddr};

use auth_core::service::BackupCodeView;
use auth_core::{
    AuthError, Credentials, LoginOutcome, RequestContext, SecretString, Session, TokenIssued,
    UserId, Via,
};
use auth_wire::{
    BackupCode, Capabilities, ErrorCode, Format, Params, Profile, ProfilePhone, TokenResponse,
    basic_credentials, negotiate,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body as HttpBody;
use hyper::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, USER_AGENT,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::Router;
use crate::respond::{self, Body, Failure};
use crate::route::{Route, match_path};

/// The peer address of a connection, put into request extensions by [`crate::serve`]; a program that
/// mounts the router elsewhere inserts it the same way (without it the peer is taken as 0.0.0.0).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

fn header<B>(req: &Request<B>, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Router {
    /// Answers one request. Never fails: every problem becomes an error envelope.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let (route_name, resp) = self.dispatch(req).await;
        let took = started.elapsed();
        self.metrics.record(route_name, resp.status().as_u16(), took);
        // One line per request: what and how it went, never parameters, bodies or headers.
        tracing::debug!(%method, route = route_name, status = resp.status().as_u16(), micros = took.as_micros() as u64, "request");
        resp
    }

    async fn dispatch<B>(&self, req: Request<B>) -> (&'static str, Response<Body>)
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let accept = header(&req, ACCEPT);
        let Ok((route, suffix)) = match_path(req.uri().path()) else {
            let format = negotiate(None, accept);
            return ("not_found", Failure::new(ErrorCode::NotFound).into_response(format));
        };
        let format = negotiate(suffix, accept);
        let name = route.name();
        if !route.methods().contains(req.method()) {
            let mut f = Failure::new(ErrorCode::MethodNotAllowed);
            f.allow =
                Some(route.methods().iter().map(Method::as_str).collect::<Vec<_>>().join(", "));
            return (name, f.into_response(format));
        }
        let resp = match self.endpoint(route, format, req).await {
            Ok(r) => r,
            Err(f) => f.into_response(format),
        };
        (name, resp)
    }

    async fn endpoint<B>(
        &self,
        route: Route,
        format: Format,
        req: Request<B>,
    ) -> Result<Response<Body>, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match route {
            Route::Healthz => {
                return Ok(respond::text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ok\n".into(),
                ));
            }
            Route::Readyz => return Ok(self.readyz().await),
            Route::Metrics => {
                return Ok(respond::text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                ));
            }
            _ => {}
        }
        let now = self.service.now();
        let fail = |e: AuthError| Failure::from_auth(&e, now);
        let host = header(&req, HOST).or_else(|| req.uri().host()).unwrap_or("");
        let portal = self.service.portal_for_host(host).await.map_err(fail)?;
        let peer =
            req.extensions().get::<PeerAddr>().map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
        let forwarded = header(&req, hyper::header::HeaderName::from_static("x-forwarded-for"));
        let ctx = RequestContext {
            portal,
            client_ip: crate::client_ip(peer, forwarded, &self.config.trusted_proxies),
            user_agent: header(&req, USER_AGENT).map(|ua| ua.chars().take(256).collect()),
        };
        let token = bearer_token(&req);
        let authorization = header(&req, AUTHORIZATION).map(str::to_owned);
        let is_get = req.method() == Method::GET;
        let params = self.read_params(&route, req).await?;
        // Admission before any store work: a credential request costs a password hash, and the hashing
        // pool can only take so many; the excess is answered 503 now, not after store round trips.
        // It comes after the body is read, so slow uploads cannot hold the slots and starve logins.
        let _slot = match route {
            Route::Authentication | Route::SetPhone | Route::SendSms | Route::Code(_)
                if !is_get =>
            {
                // Not logged per request: under a flood that would be a log line per refusal;
                // `/metrics` counts the 503s.
                Some(self.credential_slots.clone().try_acquire_owned().map_err(|_| Failure {
                    retry_after_secs: Some(1),
                    ..Failure::new(ErrorCode::Busy)
                })?)
            }
            _ => None,
        };

        match route {
            Route::Authentication if is_get => {
                let valid = match token {
                    Some(t) => self.service.authenticate(&ctx, t.expose()).await.is_ok(),
                    None => false,
                };
                Ok(respond::ok(format, valid))
            }
            Route::Authentication => {
                let creds = credentials(&params, authorization.as_deref());
                let outcome = self.service.login(&ctx, &creds).await.map_err(fail)?;
                Ok(outcome_response(&ctx, format, outcome))
            }
            Route::SetPhone => {
                let creds = credentials(&params, authorization.as_deref());
                let phone = params.get("mobilePhone");
                let outcome = self.service.set_phone(&ctx, &creds, phone).await.map_err(fail)?;
                Ok(outcome_response(&ctx, format, outcome))
            }
            Route::SendSms => {
                let creds = credentials(&params, authorization.as_deref());
                let outcome = self.service.send_sms(&ctx, &creds).await.map_err(fail)?;
                Ok(outcome_response(&ctx, format, outcome))
            }
            Route::Code(code) => {
                let creds = credentials(&params, authorization.as_deref());
                let issued = self.service.verify_code(&ctx, &creds, &code).await.map_err(fail)?;
                Ok(token_response(&ctx, format, issued))
            }
            Route::Logout => {
                let session = self.session(&ctx, token).await.map_err(fail)?;
                self.service.logout(&ctx, &session).await.map_err(fail)?;
                let mut resp = respond::ok(format, true);
                respond::clear_token_cookie(&mut resp, &ctx.portal);
                Ok(resp)
            }
            Route::PeopleSelf => {
                let session = self.session(&ctx, token).await.map_err(fail)?;
                let p = self.service.profile(&session);
                let phone =
                    p.phone_noise.map(|noise| ProfilePhone { noise, activated: p.phone_activated });
                Ok(respond::ok(
                    format,
                    Profile {
                        id: p.id.to_string(),
                        user_name: p.email.clone(),
                        first_name: p.first_name,
                        last_name: p.last_name,
                        display_name: p.display_name,
                        email: p.email,
                        phone,
                        is_admin: p.is_admin,
                    },
                ))
            }
            Route::Capabilities => {
                let providers = ctx.portal.settings.social_providers.clone();
                Ok(respond::ok(
                    format,
                    Capabilities {
                        ldap_enabled: false,
                        oauth_enabled: !providers.is_empty(),
                        providers,
                        ..Capabilities::default()
                    },
                ))
            }
            Route::TfaAppCodes => {
                let session = self.session(&ctx, token).await.map_err(fail)?;
                let codes = self.service.backup_codes(&session).await.map_err(fail)?;
                Ok(respond::ok(format, backup_list(codes)))
            }
            Route::TfaAppNewCodes => {
                let session = self.session(&ctx, token).await.map_err(fail)?;
                let codes = self.service.new_backup_codes(&ctx, &session).await.map_err(fail)?;
                Ok(respond::ok(format, backup_list(codes)))
            }
            Route::TfaAppNewApp => {
                let session = self.session(&ctx, token).await.map_err(fail)?;
                let target = match params.get("id").map(str::trim).filter(|s| !s.is_empty()) {
                    None => None,
                    Some(id) => Some(id.parse::<UserId>().map_err(|_| {
                        Failure::with_message(ErrorCode::BadRequest, "id is not a user id")
                    })?),
                };
                self.service.reset_tfa_app(&ctx, &session, target).await.map_err(fail)?;
                Ok(respond::ok(format, true))
            }
            Route::Healthz | Route::Readyz | Route::Metrics => {
                Err(Failure::new(ErrorCode::NotFound))
            }
        }
    }

    async fn session(
        &self,
        ctx: &RequestContext,
        token: Option<SecretString>,
    ) -> Result<Session, AuthError> {
        let token = token.ok_or(AuthError::Unauthorized)?;
        self.service.authenticate(ctx, token.expose()).await
    }

    async fn readyz(&self) -> Response<Body> {
        match self.service.store().list_portals().await {
            Ok(_) => respond::text(StatusCode::OK, "text/plain; charset=utf-8", "ready\n".into()),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                respond::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "store unavailable\n".into(),
                )
            }
        }
    }

    /// Reads the body (bounded in size and time) and builds the parameter bag: path > query > body.
    async fn read_params<B>(&self, route: &Route, req: Request<B>) -> Result<Params, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.config.body_limit;
        let declared = header(&req, CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let content_type = header(&req, CONTENT_TYPE).map(str::to_owned);
        let query = req.uri().query().unwrap_or("").to_owned();
        // Most token-holder requests carry no body: skip the body timer and the collection for them.
        let body = if req.body().is_end_stream() {
            Bytes::new()
        } else {
            self.read_body(req.into_body(), limit).await?
        };
        let mut builder = Params::builder().limit(limit);
        if let Route::Code(code) = route {
            builder = builder.path("code", code.clone());
        }
        if !query.is_empty() {
            builder = builder.query(&query);
        }
        let builder = builder
            .body(content_type.as_deref(), &body)
            .map_err(|e| Failure::with_message(e.error_code(), e.to_string()))?;
        Ok(builder.build())
    }

    /// Reads a body completely, within the size limit and the body timeout.
    async fn read_body<B>(&self, body: B, limit: usize) -> Result<Bytes, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limited = http_body_util::Limited::new(body, limit);
        let collected = tokio::time::timeout(self.config.body_timeout, limited.collect()).await;
        match collected {
            Err(_) => Err(Failure::with_message(
                ErrorCode::RequestTimeout,
                "request body not received in time",
            )),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                Err(too_large(limit))
            }
            Ok(Err(e)) => Err(Failure::with_message(
                ErrorCode::BadRequest,
                format!("cannot read request body: {e}"),
            )),
            Ok(Ok(c)) => Ok(c.to_bytes()),
        }
    }
}

/// The 413 answer for a body over `limit` bytes (declared or streamed).
fn too_large(limit: usize) -> Failure {
    Failure::with_message(
        ErrorCode::PayloadTooLarge,
        format!("request body larger than {limit} bytes"),
    )
}

/// The credential parameters, with `Authorization: Basic` as the carrier when no `userName` was sent.
fn credentials(params: &Params, authorization: Option<&str>) -> Credentials {
    let non_empty = |name: &str| params.get(name).map(str::to_owned).filter(|s| !s.is_empty());
    let mut user_name = non_empty("userName");
    let mut password = non_empty("password");
    if user_name.is_none()
        && let Some((u, p)) = authorization.and_then(basic_credentials)
    {
        user_name = Some(u);
        password = Some(p);
    }
    Credentials {
        user_name,
        password: password.map(SecretString::new),
        provider: non_empty("provider"),
        access_token: non_empty("accessToken").map(SecretString::new),
        code_oauth: non_empty("codeOAuth").map(SecretString::new),
    }
}

/// The token of a token-holder request: `Authorization` (raw or `Bearer`) when present, else the cookie.
fn bearer_token<B>(req: &Request<B>) -> Option<SecretString> {
    if let Some(auth) = header(req, AUTHORIZATION) {
        let auth = auth.trim();
        let token = match auth.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => auth,
        };
        return Some(SecretString::new(token));
    }
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == respond::COOKIE && !value.is_empty()).then(|| SecretString::new(value))
        })
}

fn outcome_response(ctx: &RequestContext, format: Format, outcome: LoginOutcome) -> Response<Body> {
    match outcome {
        LoginOutcome::Token(issued) => token_response(ctx, format, issued),
        LoginOutcome::SmsPending { expires, phone_noise } => respond::ok(
            format,
            TokenResponse::sms_challenge(
                expires.and_then(|e| respond::date(&ctx.portal, e)),
                phone_noise,
            ),
        ),
        LoginOutcome::TotpPending { tfa_key } => respond::ok(
            format,
            TokenResponse::tfa_challenge(tfa_key.map(|k| k.expose().to_owned())),
        ),
    }
}

fn token_response(ctx: &RequestContext, format: Format, issued: TokenIssued) -> Response<Body> {
    let mut body = TokenResponse {
        token: Some(issued.token.expose().to_owned()),
        expires: respond::date(&ctx.portal, issued.expires),
        ..TokenResponse::default()
    };
    match issued.via {
        Via::Password => {}
        Via::Sms { phone_noise } => {
            body.sms = true;
            body.phone_noise = Some(phone_noise);
        }
        Via::Totp => body.tfa = true,
    }
    let mut resp = respond::ok(format, body);
    respond::set_token_cookie(&mut resp, &ctx.portal, issued.token.expose(), issued.expires);
    resp
}

fn backup_list(codes: Vec<BackupCodeView>) -> Vec<BackupCode> {
    codes
        .into_iter()
        .map(|c| BackupCode { is_used: c.used, code: c.code.expose().to_owned() })
        .collect()
}
