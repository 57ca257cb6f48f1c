// Peer IdP for the authorization-code round of ops/bench/oidc.sh: panva/oidc-provider on
// 127.0.0.1:3001 (PORT) with one confidential code-flow client and a scripted interaction that
// logs in 'bench-user' and grants 'openid' at once, so that one login leaves a session with
// which every later authorize request answers with a code (the session's grant is reused).
// The code-flow sibling of server.mjs in this folder (same keys file, ES256 + RS256); oidc.sh
// runs it from here after setup.sh has installed the pinned oidc-provider into node_modules.
// ID tokens are RS256 (oidc-provider's default
// id_token_signed_response_alg); access tokens are oidc-provider's default for a
// userinfo-capable token: opaque, kept in the adapter.
//
// Storage: by default a plain in-process Map adapter (below) with a constant-time index of the
// tokens of a grant, like the Redis adapter of oidc-provider's examples (RPUSH per token). The
// library's own development adapter (PEER_ADAPTER=lru) rescans the whole member list of a grant
// on every stored code or token (setGrantMembers), and here every round shares one grant (the
// session's): a 10 s run then slows down as it goes (measured: 43 µs per upsert at 1 000 tokens
// of one grant, 630 µs at 20 000), which would measure that development shortcut, not the peer.
//   PORT (3001)  KEYS (path to persisted JWKS, default ./keys.json next to this file)
//   PEER_ADAPTER (map | lru, default map)
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 3001);
const HOST = '127.0.0.1';
const KEYS = process.env.KEYS || new URL('./keys.json', import.meta.url).pathname;
const ISSUER = `http://${HOST}:${PORT}`;
const ACCOUNT = 'bench-user';
const ADAPTER = process.env.PEER_ADAPTER || 'map';

// Map adapter: every model in one Map, entries expire lazily on read and in a sweep every 10 s.
const store = new Map(); // `${model}:${id}` -> { payload, exp }
const grantMembers = new Map(); // grantId -> Set of store keys
const sessionUids = new Map(); // Session uid -> id
const userCodes = new Map(); // user code -> id
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);
function live(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp <= Date.now()) { store.delete(key); return undefined; }
  return e.payload;
}
setInterval(() => {
  const now = Date.now();
  for (const [k, e] of store) if (e.exp <= now) store.delete(k);
  for (const [g, keys] of grantMembers) {
    for (const k of keys) if (!store.has(k)) keys.delete(k);
    if (keys.size === 0) grantMembers.delete(g);
  }
}, 10_000).unref();
class MapAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (this.model === 'Session') sessionUids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
    if (payload.grantId && GRANTABLE.has(this.model)) {
      let keys = grantMembers.get(payload.grantId);
      if (!keys) grantMembers.set(payload.grantId, keys = new Set());
      keys.add(key);
    }
  }
  async find(id) { return live(this.key(id)); }
  async findByUid(uid) { const id = sessionUids.get(uid); return id === undefined ? undefined : this.find(id); }
  async findByUserCode(code) { const id = userCodes.get(code); return id === undefined ? undefined : this.find(id); }
  async consume(id) { const p = live(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const k of grantMembers.get(grantId) ?? []) store.delete(k);
    grantMembers.delete(grantId);
  }
}

function loadOrCreateKeys() {
  if (fs.existsSync(KEYS)) return JSON.parse(fs.readFileSync(KEYS, 'utf8'));
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const jwks = { keys: [
    { ...ec, kid: 'es256-1', alg: 'ES256', use: 'sig' },
    { ...rsa, kid: 'rs256-1', alg: 'RS256', use: 'sig' },
  ] };
  fs.writeFileSync(KEYS, JSON.stringify(jwks), { mode: 0o600 });
  return jwks;
}

const configuration = {
  clients: [{
    client_id: 'bench-code',
    client_secret: 'bench-code-secret',
    grant_types: ['authorization_code'],
    redirect_uris: ['http://127.0.0.1:9/cb'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    scope: 'openid',
  }],
  jwks: loadOrCreateKeys(),
  cookies: { keys: ['peer-bench-cookie-key-0123456789abcdef'] },
  scopes: ['openid'],
  // Like ours: PKCE (S256) on every authorization request, not only for public clients
  // (oidc-provider's default requires it only for public clients and FAPI 2.0).
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, sub) => (sub === ACCOUNT
    ? { accountId: sub, claims: async () => ({ sub }) }
    : undefined),
  features: {
    devInteractions: { enabled: false },
  },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 3600,
    Session: 14 * 24 * 3600, Grant: 14 * 24 * 3600 },
  ...(ADAPTER === 'map' ? { adapter: MapAdapter } : {}),
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// The interaction: log in ACCOUNT and grant the requested OIDC scopes in one step, then send the
// browser back to the authorization endpoint (303), which answers with the code.
provider.use(async (ctx, next) => {
  const m = ctx.method === 'GET' && /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== m[1]) ctx.throw(400, 'interaction mismatch');
  const { params, prompt } = details;
  const result = {};
  if (prompt.name === 'login' || !details.session?.accountId) {
    result.login = { accountId: ACCOUNT };
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope || 'openid'));
  result.consent = { grantId: await grant.save() };
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
});

provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider (code flow, ${ADAPTER} adapter) listening on ${ISSUER} pid=${process.pid}`);
});
