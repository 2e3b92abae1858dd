// A real OpenID provider for the black-box social-login tests: the certified `oidc-provider` package,
// served over HTTPS on loopback, configured from a JSON file that the Rust harness (tests/src/oidc.rs)
// writes. Nothing here is fit for production: it logs any configured account in without a password.
//
// Usage: node provider.mjs --cert SERVER.pem --key SERVER-KEY.pem --ca CA.pem --config CONFIG.json [--port 0]
//
// CONFIG.json: { "clients": [{ "client_id", "client_secret", "redirect_uris": [..],
//                              "token_endpoint_auth_method": "client_secret_basic" | "client_secret_post" }],
//                "accounts": [{ "sub", "email"?, "email_verified", "given_name", "family_name" }] }
//
// Once it listens it prints exactly one line, `listening on https://127.0.0.1:PORT`, on stdout.
// It exits when its standard input closes, so a test process that dies cannot leave it running.
//
// Beside the provider's own endpoints (see /.well-known/openid-configuration) it serves two test-only
// endpoints that play the user's browser, so a test needs no HTML and no browser:
//   GET /test/code?account=SUB&client_id=..&redirect_uri=..&nonce=..[&state=..][&code_challenge=..&code_challenge_method=S256]
//       -> {"code": "..", "state": ..}: an authorization code obtained through the real /auth flow.
//       Every parameter except `account` is passed on to /auth, so a test can forward the parameters of
//       the authorization URL that the server under test built.
//   GET /test/tokens?client_id=..&account=SUB[&nonce=..]
//       -> {"access_token": "..", "id_token": ".."}: such a code, really exchanged at the token endpoint.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    config: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});
for (const name of ['cert', 'key', 'ca', 'config']) {
  if (!args[name]) {
    console.error(`provider.mjs: --${name} is required`);
    process.exit(2);
  }
}

const config = JSON.parse(fs.readFileSync(args.config, 'utf8'));
const accounts = new Map((config.accounts ?? []).map((a) => [a.sub, a]));
const clients = new Map((config.clients ?? []).map((c) => [c.client_id, c]));
// The CA that signed our own certificate: the test endpoints call this server over HTTPS like any
// client would, and trust exactly what the server under test is told to trust.
const ca = fs.readFileSync(args.ca);

// Scope -> claims. Only the claims the social login reads; `sub` always comes with `openid`.
const claims = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['given_name', 'family_name'],
};
const SCOPE = 'openid email profile';

// A fresh RS256 signing key per run: the server under test must fetch it from `jwks_uri`, and no key
// outlives the test that trusted it.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: crypto.randomUUID(),
  alg: 'RS256',
  use: 'sig',
};

const server = https.createServer({
  cert: fs.readFileSync(args.cert),
  key: fs.readFileSync(args.key),
});

// The issuer contains the port, which is only known once the socket is bound; requests that come in
// before the provider exists cannot happen, because nobody knows the port before the line below.
let handle = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
server.on('request', (req, res) => handle(req, res));

server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [...clients.values()].map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...c,
    })),
    jwks: { keys: [signingKey] },
    claims,
    // Put the scopes' claims (e-mail, names) into the ID token as well as the userinfo answer, the
    // way the big providers do; the certified default keeps them out of an ID token issued with an
    // access token.
    conformIdTokenClaims: false,
    // A test may ask for short-lived ID tokens, to see the server refuse an expired one; merged into
    // the defaults, so the other lifetimes stay as they are.
    ...(config.id_token_ttl ? { ttl: { IdToken: config.id_token_ttl } } : {}),
    findAccount: async (_ctx, id) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        // The provider filters these by the granted scopes; an absent e-mail stays absent.
        claims: async () => Object.fromEntries(
          Object.entries({
            sub: account.sub,
            email: account.email,
            email_verified: account.email_verified,
            given_name: account.given_name,
            family_name: account.family_name,
          }).filter(([, v]) => v !== undefined && v !== null),
        ),
      };
    },
    features: {
      // The test endpoints below play the user; the provider's built-in login pages are not needed.
      devInteractions: { enabled: false },
      // RFC 7009, so a test can end an access token and watch userinfo refuse it.
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    // PKCE is checked whenever the client sends a challenge, but not demanded, so a test can also
    // obtain a code with nothing but a nonce.
    pkce: { required: () => false },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    // Errors as JSON instead of the HTML page, so a failing test shows the provider's reason.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  const callback = provider.callback();

  handle = (req, res) => {
    const url = new URL(req.url, issuer);
    const route = {
      '/test/code': testCode,
      '/test/tokens': testTokens,
    }[url.pathname];
    if (route && req.method === 'GET') {
      route(url.searchParams).then(
        (body) => answer(res, 200, body),
        (err) => answer(res, err.status ?? 500, { error: err.message }),
      );
    } else if (url.pathname.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => answer(res, 400, { error: err.message }));
    } else {
      callback(req, res);
    }
  };

  // The user at the login page: logs in the account that `login_hint` names and grants the requested
  // scopes, through the provider's public interaction API, then lets the browser resume at /auth.
  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const accountId = details.params.login_hint;
    if (!accounts.has(accountId)) throw new Error(`login_hint names no configured account: ${accountId}`);
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, {
      mergeWithLastSubmission: false,
    });
  }

  // A browser in a few lines: follows the provider's redirects with its cookies until one leaves the
  // issuer, and answers the code and state from that redirect (to the client's redirect_uri).
  async function authorize(params) {
    const query = new URLSearchParams(params);
    const account = query.get('account');
    query.delete('account');
    query.set('login_hint', account ?? '');
    if (!query.has('scope')) query.set('scope', SCOPE);
    if (!query.has('response_type')) query.set('response_type', 'code');
    const cookies = new Map();
    let location = `${issuer}/auth?${query}`;
    for (let hop = 0; hop < 5; hop += 1) {
      const target = new URL(location, issuer);
      if (target.origin !== issuer) {
        const error = target.searchParams.get('error');
        if (error) {
          throw Object.assign(new Error(`${error}: ${target.searchParams.get('error_description')}`), { status: 400 });
        }
        return { code: target.searchParams.get('code'), state: target.searchParams.get('state') };
      }
      const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await request('GET', target.pathname + target.search, { cookie });
      for (const line of res.headers['set-cookie'] ?? []) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      if (res.status !== 303 && res.status !== 302) {
        throw Object.assign(new Error(`${target.pathname} answered ${res.status}: ${res.body.slice(0, 500)}`), { status: 400 });
      }
      location = res.headers.location;
    }
    throw new Error('too many redirects');
  }

  async function testCode(params) {
    return authorize(params);
  }

  // A whole login as a client would do it: PKCE, a code, and the exchange at the token endpoint with
  // the client's registered authentication method.
  async function testTokens(params) {
    const client = clients.get(params.get('client_id'));
    if (!client) throw Object.assign(new Error('unknown client_id'), { status: 400 });
    const redirectUri = client.redirect_uris[0];
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const { code } = await authorize({
      account: params.get('account') ?? '',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      nonce: params.get('nonce') ?? crypto.randomBytes(16).toString('base64url'),
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    if (client.token_endpoint_auth_method === 'client_secret_post') {
      form.set('client_id', client.client_id);
      form.set('client_secret', client.client_secret);
    } else {
      // RFC 6749 section 2.3.1: each part is form-encoded before the base64.
      const user = encodeURIComponent(client.client_id);
      const pass = encodeURIComponent(client.client_secret);
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    const res = await request('POST', '/token', headers, form.toString());
    if (res.status !== 200) {
      throw Object.assign(new Error(`token endpoint answered ${res.status}: ${res.body}`), { status: 502 });
    }
    const { access_token: accessToken, id_token: idToken } = JSON.parse(res.body);
    return { access_token: accessToken, id_token: idToken };
  }

  // One HTTPS request to ourselves, trusting only the test CA.
  function request(method, path, headers, body) {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, headers, ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  // On a pipe (the harness reads it) stdout writes are synchronous on Linux, so the line is out now.
  process.stdout.write(`listening on ${issuer}\n`);
});

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// The harness holds our stdin open for as long as it wants us; its end (even by the harness crashing)
// is the signal to go.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
