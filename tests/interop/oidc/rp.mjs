// openid-client (panva) as a relying party against a running Kuntalaistili: discovery, PAR with
// PKCE S256, state and nonce; the resident's browser is plain fetch with a tiny cookie jar; then
// the code grant (ID token and RFC 9207 `iss` checks), userinfo, refresh and RP-initiated logout.
//
// Usage: node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD POST_LOGOUT_URI
// (each also from RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET, RP_REDIRECT_URI, RP_USERNAME,
// RP_PASSWORD, RP_POST_LOGOUT_REDIRECT_URI). Prints one line of JSON on success; exits 1 otherwise.

import * as client from 'openid-client';

const names = [
  'ISSUER',
  'CLIENT_ID',
  'CLIENT_SECRET',
  'REDIRECT_URI',
  'USERNAME',
  'PASSWORD',
  'POST_LOGOUT_REDIRECT_URI',
];
const arg = Object.fromEntries(
  names.map((n, i) => [n, process.argv[2 + i] ?? process.env[`RP_${n}`]]),
);
const missing = names.filter((n) => !arg[n]);
if (missing.length > 0) {
  console.error(`missing: ${missing.join(', ')}`);
  process.exit(2);
}

function fail(message) {
  throw new Error(message);
}

// The resident's browser: cookies by name (one host), redirects looked at, not followed.
const jar = new Map();

async function browse(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size > 0) {
    headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  }
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const gone = attrs.some((a) => {
      const [k, v = ''] = a.trim().split('=');
      const key = k.toLowerCase();
      return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) < Date.now());
    });
    if (gone || value === '') jar.delete(name);
    else jar.set(name, value);
  }
  const location = res.headers.get('location');
  return { res, location: location && new URL(location, url) };
}

async function expectRedirect(step, url, init) {
  const { res, location } = await browse(url, init);
  if (res.status !== 303 || !location) {
    const body = await res.text();
    fail(`${step}: expected 303 from ${url}, got ${res.status}: ${body.slice(0, 500)}`);
  }
  return location;
}

function unescapeHtml(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function hiddenField(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m ? unescapeHtml(m[1]) : fail(`no ${name} field on the login page: ${html.slice(0, 500)}`);
}

async function main() {
  const issuer = new URL(arg.ISSUER);

  // Discovery; the client was registered for client_secret_basic.
  const config = await client.discovery(
    issuer,
    arg.CLIENT_ID,
    { redirect_uris: [arg.REDIRECT_URI] },
    client.ClientSecretBasic(arg.CLIENT_SECRET),
    { execute: [client.allowInsecureRequests] },
  );

  // Pushed authorization request with PKCE S256, state and nonce.
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: arg.REDIRECT_URI,
    scope: 'openid profile email offline_access',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  if (!authUrl.searchParams.get('request_uri')) fail(`PAR gave no request_uri: ${authUrl}`);

  // The browser: authorize → login page → login → resume → back at the client.
  const toLogin = await expectRedirect('authorize', authUrl);
  if (toLogin.pathname !== '/login') fail(`authorize: expected the login page, got ${toLogin}`);
  const page = await browse(toLogin);
  if (page.res.status !== 200) fail(`login page: status ${page.res.status}`);
  const html = await page.res.text();
  const form = new URLSearchParams({
    csrf: hiddenField(html, 'csrf'),
    username: arg.USERNAME,
    password: arg.PASSWORD,
    next: hiddenField(html, 'next'),
  });
  const next = await expectRedirect('login', new URL('/login', issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
  });
  let callback = next;
  for (let hops = 0; !callback.href.startsWith(arg.REDIRECT_URI); hops++) {
    if (hops >= 3) fail(`too many redirects before the client, stuck at ${callback}`);
    const { res, location } = await browse(callback);
    if (res.status !== 303 || !location) {
      const body = await res.text();
      if (body.includes('name="decision"')) {
        fail(`a consent page appeared at ${callback} although the client skips consent`);
      }
      fail(`expected 303 from ${callback}, got ${res.status}: ${body.slice(0, 500)}`);
    }
    callback = location;
  }
  const error = callback.searchParams.get('error');
  if (error) {
    fail(`authorization error ${error}: ${callback.searchParams.get('error_description')}`);
  }

  // Code grant: checks state, the `iss` response parameter, PKCE, and the ID token and nonce.
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims() ?? fail('no ID token claims');
  if (!tokens.refresh_token) fail('no refresh token despite offline_access');

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  if (!refreshed.access_token) fail('refresh gave no access token');
  if (refreshed.refresh_token === tokens.refresh_token) fail('refresh token was not rotated');
  const refreshedClaims = refreshed.claims();
  if (refreshedClaims && refreshedClaims.sub !== claims.sub) {
    fail(`refreshed ID token is for ${refreshedClaims.sub}, not ${claims.sub}`);
  }
  // The new access token works too.
  await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

  // RP-initiated logout in the browser, naming its own session through the ID token.
  const logoutState = client.randomState();
  const endUrl = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token ?? tokens.id_token,
    post_logout_redirect_uri: arg.POST_LOGOUT_REDIRECT_URI,
    state: logoutState,
  });
  const back = await expectRedirect('end session', endUrl);
  const expectedBack = new URL(arg.POST_LOGOUT_REDIRECT_URI);
  expectedBack.searchParams.append('state', logoutState);
  if (back.href !== expectedBack.href) {
    fail(`end session: expected a return to ${expectedBack}, got ${back}`);
  }

  // The session is over: the account page sends the browser to log in again.
  const account = await expectRedirect('account after logout', new URL('/account', issuer));
  if (account.pathname !== '/login') fail(`account after logout: expected /login, got ${account}`);

  console.log(
    JSON.stringify({
      ok: true,
      sub: claims.sub,
      id_token_alg: JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg,
      scope: tokens.scope,
      userinfo,
      refreshed: true,
      logout: back.href,
      after_logout: account.pathname,
    }),
  );
}

main().catch((e) => {
  console.error(`openid-client flow failed: ${e?.stack ?? e}`);
  if (e?.cause) console.error('cause:', e.cause);
  process.exit(1);
});
