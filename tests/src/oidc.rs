//! A real OpenID provider for the social-login tests: the certified `oidc-provider` npm package run by
//! Node.js (`tests/oidc/provider.mjs`) on `https://127.0.0.1:PORT`, with a CA made by the test.
//!
//! [`OidcProvider::start`] makes a CA and a certificate for `127.0.0.1` (rcgen), writes them and the
//! clients and accounts to a temporary directory, starts `node tests/oidc/provider.mjs`, and waits
//! (bounded by [`WAIT`]) for its `listening on` line. The server under test is told to trust
//! [`OidcProvider::ca_file`]; the harness's own HTTPS client (rustls) trusts that CA and nothing else.
//!
//! The provider logs users in without a browser: [`OidcProvider::code`] asks its test-only endpoint to
//! walk the real `/auth` flow for an account, and [`OidcProvider::tokens`] also redeems the code at the
//! token endpoint, so every token a test holds was issued the way a real login issues it.
//!
//! Without `node` or `tests/oidc/node_modules` (`npm ci --prefix tests/oidc`), `start` skips loudly
//! and answers `None`; under `CI=true` that skip fails the test, because `.ci/run` installs both.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{Request, Response, WAIT, base64, skip};

/// The line `provider.mjs` prints once its socket is bound.
const LISTENING: &str = "listening on https://";

/// How a client authenticates at the token and revocation endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic`, the OpenID default.
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl ClientAuth {
    /// The registered `token_endpoint_auth_method`.
    pub fn method(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
        }
    }
}

/// A relying party registered at the provider (one portal's social-login configuration).
#[derive(Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// The exact redirect URIs the provider accepts; [`OidcProvider::tokens`] uses the first.
    pub redirect_uris: Vec<String>,
    /// The token endpoint's authentication method.
    pub auth: ClientAuth,
}

impl OidcClient {
    /// A `client_secret_basic` client with one redirect URI.
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            auth: ClientAuth::Basic,
        }
    }

    /// The same client authenticating with `client_secret_post`.
    pub fn post(mut self) -> Self {
        self.auth = ClientAuth::Post;
        self
    }
}

// The secret stays out of assertion messages and logs.
impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("auth", &self.auth)
            .finish()
    }
}

/// A user at the provider; its claims come back in the ID token and from userinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcAccount {
    /// `sub`, also the account's name in [`OidcProvider::code`] and [`OidcProvider::tokens`].
    pub sub: String,
    /// `email`; `None` leaves the claim out, as providers do for accounts without one.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
    /// `given_name`.
    pub given_name: String,
    /// `family_name`.
    pub family_name: String,
}

impl OidcAccount {
    /// An account with a verified e-mail (or none).
    pub fn new(sub: &str, email: Option<&str>, given_name: &str, family_name: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            email: email.map(str::to_owned),
            email_verified: true,
            given_name: given_name.to_owned(),
            family_name: family_name.to_owned(),
        }
    }

    /// The same account with `email_verified: false`.
    pub fn unverified(mut self) -> Self {
        self.email_verified = false;
        self
    }
}

/// A running `tests/oidc/provider.mjs`, killed when stopped or dropped.
pub struct OidcProvider {
    child: Child,
    // Held open for the provider's whole life: it exits when this pipe closes, so even a test process
    // that dies without running `Drop` leaves no provider behind.
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    issuer: String,
    ca_file: PathBuf,
    tls: Arc<rustls::ClientConfig>,
    clients: Vec<OidcClient>,
    stderr: Arc<Mutex<String>>,
    // Last, so the files outlive the process that reads them.
    _dir: TempDir,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("pid", &self.child.id())
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

/// `tests/oidc`, where `provider.mjs` and its `node_modules` live.
fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

impl OidcProvider {
    /// Starts a provider with these clients and accounts, or skips (see [`skip`]) and answers `None`
    /// when Node.js or the installed npm package is missing.
    #[track_caller]
    pub fn start(clients: Vec<OidcClient>, accounts: Vec<OidcAccount>) -> Option<OidcProvider> {
        Self::start_with(clients, accounts, None)
    }

    /// [`OidcProvider::start`], with ID tokens that live `id_token_ttl_secs` when given.
    pub fn start_with(
        clients: Vec<OidcClient>,
        accounts: Vec<OidcAccount>,
        id_token_ttl_secs: Option<u64>,
    ) -> Option<OidcProvider> {
        let dir = oidc_dir();
        let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
        if !node.is_ok_and(|out| out.status.success()) {
            skip("`node` is not on PATH; the social-login tests need Node.js 18 or later");
            return None;
        }
        if !dir.join("node_modules/oidc-provider/package.json").is_file() {
            skip("tests/oidc/node_modules is missing; run `npm ci --prefix tests/oidc`");
            return None;
        }

        let tmp = tempfile::Builder::new().prefix("auth-oidc-").tempdir().expect("tempdir");
        let (ca_pem, cert_pem, key_pem) = certificates();
        let ca_file = tmp.path().join("ca.pem");
        let files = [
            (&ca_file, ca_pem),
            (&tmp.path().join("server.pem"), cert_pem),
            (&tmp.path().join("server-key.pem"), key_pem),
            (
                &tmp.path().join("config.json"),
                config(&clients, &accounts, id_token_ttl_secs).to_string(),
            ),
        ];
        for (path, text) in &files {
            std::fs::write(path, text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        // The client trusts what is in the file, read back, so a test proves the file the server under
        // test is given is enough.
        let tls = client_config(&ca_file);

        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg("--cert")
            .arg(tmp.path().join("server.pem"))
            .arg("--key")
            .arg(tmp.path().join("server-key.pem"))
            .arg("--ca")
            .arg(&ca_file)
            .arg("--config")
            .arg(tmp.path().join("config.json"))
            .args(["--port", "0"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning node tests/oidc/provider.mjs");
        let stdin = child.stdin.take();

        // Both pipes are drained for the provider's whole life, so it never blocks on a full pipe.
        let (lines_tx, lines) = mpsc::channel::<String>();
        let out_pipe = child.stdout.take().expect("stdout pipe");
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_text = Arc::clone(&stderr);
        let err_pipe = child.stderr.take().expect("stderr pipe");
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = err_text.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });

        let deadline = Instant::now() + WAIT;
        let mut said = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(LISTENING) {
                    Some(addr) => {
                        break addr.trim().parse::<SocketAddr>().expect("a socket address");
                    }
                    None => said.push(line),
                },
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    // The stderr reader finishes once the process is gone; a moment collects the rest.
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    panic!(
                        "the OpenID provider did not start ({status:?}):\n--- stdout\n{}\n--- stderr\n{}",
                        said.join("\n"),
                        stderr.lock().expect("stderr lock")
                    );
                }
            }
        };
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST, "the provider must listen on loopback only");
        Some(OidcProvider {
            child,
            stdin,
            addr,
            issuer: format!("https://{addr}"),
            ca_file,
            tls,
            clients,
            stderr,
            _dir: tmp,
        })
    }

    /// `https://127.0.0.1:PORT`, exactly as in the ID tokens' `iss` and the discovery document.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that signed the provider's certificate: the one thing the server
    /// under test must trust to reach it.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// Everything the provider logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Sends a request over HTTPS, trusting only [`OidcProvider::ca_file`], and reads the answer.
    #[track_caller]
    pub fn send(&self, request: Request) -> Response {
        https_send(&self.tls, self.addr, &request)
            .unwrap_or_else(|e| panic!("HTTPS to the OpenID provider at {}: {e}", self.issuer))
    }

    /// `GET path` over HTTPS.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.send(Request::get(path))
    }

    /// The discovery document, `/.well-known/openid-configuration`.
    #[track_caller]
    pub fn discovery(&self) -> Value {
        let r = self.get("/.well-known/openid-configuration");
        assert_eq!(r.status, 200, "discovery: {}", r.text());
        r.json()
    }

    /// The path (with query) of one of this provider's URLs, e.g. an endpoint from the discovery
    /// document, for [`OidcProvider::send`].
    #[track_caller]
    pub fn path_of(&self, url: &str) -> String {
        let path = url
            .strip_prefix(&self.issuer)
            .unwrap_or_else(|| panic!("{url} is not under the issuer {}", self.issuer));
        if path.is_empty() { "/".to_owned() } else { path.to_owned() }
    }

    /// The path of the discovery document's endpoint `name` (`"userinfo_endpoint"`, …).
    #[track_caller]
    pub fn endpoint(&self, name: &str) -> String {
        let discovery = self.discovery();
        let url = discovery[name].as_str().unwrap_or_else(|| panic!("no {name} in discovery"));
        self.path_of(url)
    }

    /// An authorization code for `account`, issued to `client_id` for `redirect_uri` with `nonce`,
    /// through the real `/auth` flow (see `tests/oidc/provider.mjs`).
    #[track_caller]
    pub fn code(&self, client_id: &str, account: &str, redirect_uri: &str, nonce: &str) -> String {
        self.code_for(
            account,
            &[("client_id", client_id), ("redirect_uri", redirect_uri), ("nonce", nonce)],
        )
    }

    /// An authorization code for `account`, with `params` passed to `/auth` as they are: a test
    /// forwards the query of the authorization URL the server under test built (`client_id`,
    /// `redirect_uri`, `state`, `nonce`, `code_challenge`, `scope`, …). The provider checks the
    /// returned `state` equals the one given.
    #[track_caller]
    pub fn code_for(&self, account: &str, params: &[(&str, &str)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("account", account);
        query.extend_pairs(params);
        let r = self.get(&format!("/test/code?{}", query.finish()));
        assert_eq!(r.status, 200, "the provider gave no code: {}", r.text());
        let body = r.json();
        let state = params.iter().find(|(k, _)| *k == "state").map(|(_, v)| *v);
        assert_eq!(body["state"].as_str(), state, "the redirect carried another state");
        body["code"].as_str().expect("a code").to_owned()
    }

    /// `(access_token, id_token)` for `account`, from a code really redeemed at the token endpoint by
    /// `client_id` (with its first redirect URI and PKCE).
    #[track_caller]
    pub fn tokens(&self, client_id: &str, account: &str) -> (String, String) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("account", account)
            .finish();
        let r = self.get(&format!("/test/tokens?{query}"));
        assert_eq!(r.status, 200, "the provider gave no tokens: {}", r.text());
        let body = r.json();
        let field = |k: &str| body[k].as_str().unwrap_or_else(|| panic!("no {k}")).to_owned();
        (field("access_token"), field("id_token"))
    }

    /// Revokes an access token (RFC 7009) as the client would, with its registered authentication.
    #[track_caller]
    pub fn revoke(&self, client_id: &str, secret: &str, access_token: &str) {
        let auth = self
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .map_or(ClientAuth::Basic, |c| c.auth);
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", access_token).append_pair("token_type_hint", "access_token");
        let mut request = Request::post(&self.endpoint("revocation_endpoint"));
        match auth {
            ClientAuth::Post => {
                form.append_pair("client_id", client_id).append_pair("client_secret", secret);
            }
            ClientAuth::Basic => {
                // RFC 6749 section 2.3.1: each part is form-encoded before the base64.
                let encode =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(client_id), encode(secret));
                request =
                    request.header("Authorization", &format!("Basic {}", base64(pair.as_bytes())));
            }
        }
        let r = self.send(request.body("application/x-www-form-urlencoded", form.finish()));
        assert_eq!(r.status, 200, "revocation refused: {}", r.text());
    }

    /// Stops the provider now (dropping it does the same).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A fresh CA and a server certificate for `127.0.0.1` signed by it, as PEM: `(ca, cert, key)`
/// (also the SMS fakes' in [`crate::https`]).
pub(crate) fn certificates() -> (String, String, String) {
    let ca = crate::TestCa::new("auth-tests OpenID provider CA");
    let issued = ca.issue(&["127.0.0.1"]);
    (ca.pem(), issued.cert_pem, issued.key_pem)
}

/// The JSON `provider.mjs` reads.
fn config(clients: &[OidcClient], accounts: &[OidcAccount], id_token_ttl: Option<u64>) -> Value {
    json!({
        "id_token_ttl": id_token_ttl,
        "clients": clients.iter().map(|c| json!({
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "redirect_uris": c.redirect_uris,
            "token_endpoint_auth_method": c.auth.method(),
        })).collect::<Vec<_>>(),
        "accounts": accounts.iter().map(|a| json!({
            "sub": a.sub,
            "email": a.email,
            "email_verified": a.email_verified,
            "given_name": a.given_name,
            "family_name": a.family_name,
        })).collect::<Vec<_>>(),
    })
}

/// A TLS client configuration that trusts exactly the certificates in `ca_file` (PEM).
#[track_caller]
pub fn client_config(ca_file: &Path) -> Arc<rustls::ClientConfig> {
    let pem =
        std::fs::read(ca_file).unwrap_or_else(|e| panic!("reading {}: {e}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a PEM certificate")).expect("a usable CA certificate");
    }
    assert!(!roots.is_empty(), "no certificate in {}", ca_file.display());
    // ring, explicitly: the process has no default crypto provider installed.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// Sends `request` to `addr` over TLS with `config`, verifying the certificate for the address's IP,
/// and reads the response until the server closes; a failed handshake (an untrusted certificate)
/// is the `Err`.
pub fn https_send(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    request: &Request,
) -> std::io::Result<Response> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.set_write_timeout(Some(WAIT))?;
    let conn = rustls::ClientConnection::new(Arc::clone(config), ServerName::from(addr.ip()))
        .map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&request.to_bytes(addr))?;
    tls.flush()?;
    let mut raw = Vec::new();
    if let Err(e) = tls.read_to_end(&mut raw) {
        // A peer that closes without TLS close_notify after a complete response is fine.
        if raw.is_empty() {
            return Err(e);
        }
    }
    Ok(Response::parse(&raw))
}
