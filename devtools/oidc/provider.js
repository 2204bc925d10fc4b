// A real OpenID provider (the `oidc-provider` package) for CONTRACTOR's single sign-on tests and demos.
//
//   node devtools/oidc/provider.js CONFIG.json
//
// CONFIG.json (reread on every sign-in and claims request, so a test can change a user's groups between
// two logins by rewriting it):
//   {"issuer": "http://127.0.0.1:9400", "port": 9400, "alg": "RS256" | "ES256",
//    "clients": [{"client_id": "...", "client_secret": "...", "redirect_uris": ["http://alpha.localhost:8000/sso/callback/"]}],
//    "users": {"alice": {"password": "...", "email": "alice@example.test", "name": "Alice", "groups": ["eng"]}}}
// Issuer, port, algorithm and clients are read once at start. Every client must use the authorization code
// flow with PKCE (S256). Consent is implied (first-party clients); the login page checks the users' passwords.
// Prints "oidc-provider listening on <issuer>" once it accepts connections.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node provider.js CONFIG.json');
  process.exit(2);
}

function readConfig() {
  return JSON.parse(readFileSync(configPath, 'utf8'));
}

function userNamed(name) {
  const users = readConfig().users || {};
  return Object.prototype.hasOwnProperty.call(users, name) ? users[name] : undefined;
}

const config = readConfig();
const alg = config.alg || 'RS256';
const key = alg === 'ES256'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
key.kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
key.alg = alg;
key.use = 'sig';

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: client.client_secret ? 'client_secret_basic' : 'none',
    id_token_signed_response_alg: alg,
  })),
  jwks: { keys: [key] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // The claims of the granted scopes go into the ID token itself (CONTRACTOR also reads userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    if (!userNamed(sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        const user = userNamed(sub) || {};
        return {
          sub,
          preferred_username: sub,
          name: user.name || sub,
          email: user.email || `${sub}@example.test`,
          email_verified: true,
          groups: user.groups || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // First-party clients: consent is implied for the scopes asked for.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) {
        existing.addOIDCScope(ctx.oidc.params.scope || 'openid');
        await existing.save();
        return existing;
      }
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
});

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Test identity provider</title></head><body>
<h1>Test identity provider</h1>
${error ? `<p id="idp-error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="username" autocomplete="off" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in to the identity provider</button>
</form></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10000) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid, ''));
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const username = form.get('username') || '';
    const user = userNamed(username);
    if (!user || user.password !== form.get('password')) {
      return send(res, 200, loginPage(uid, 'Unknown user or wrong password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: username } }, {
      mergeWithLastSubmission: false,
    });
  }
  return send(res, 405, 'method not allowed');
}

const handle = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(req.url.split('?')[0]);
  if (!match) return handle(req, res);
  try {
    return await interaction(req, res, match[1], match[2]);
  } catch (error) {
    return send(res, 400, `interaction failed: ${escapeHtml(error.message)}`);
  }
});

server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
