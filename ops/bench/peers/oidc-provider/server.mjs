// Comparison OP for the client_credentials, discovery and JWKS runs of ops/bench/oidc.sh:
// panva/oidc-provider (version pinned in package.json) on 127.0.0.1:PORT (3001) with a single
// confidential client, bench-client / bench-secret (HTTP Basic), allowed the scopes api:read and
// api:write for one resource server. Access tokens are JWTs signed ES256, as ours are.
//   PORT (3001)   ALG (ES256 | RS256: signature of JWT access tokens)
//   FORMAT (jwt | opaque)   KEYS (signing keys kept between runs; default ./keys.json here)
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3001);
const issuer = `http://127.0.0.1:${port}`;
const alg = process.env.ALG || 'ES256';
const format = process.env.FORMAT || 'jwt';
const keysFile = process.env.KEYS || new URL('./keys.json', import.meta.url).pathname;
const audience = 'urn:kuntalaistili-bench:api';

// One P-256 and one RSA-2048 private JWK, made on the first start and reused afterwards (the same
// file as code.mjs), so that a restarted peer publishes the same JWKS.
function signingKeys() {
  if (fs.existsSync(keysFile)) return JSON.parse(fs.readFileSync(keysFile, 'utf8'));
  const jwk = (type, options) => crypto.generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  const keys = {
    keys: [
      { ...jwk('ec', { namedCurve: 'P-256' }), kid: 'es256-1', alg: 'ES256', use: 'sig' },
      { ...jwk('rsa', { modulusLength: 2048 }), kid: 'rs256-1', alg: 'RS256', use: 'sig' },
    ],
  };
  fs.writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench-client',
    client_secret: 'bench-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read api:write',
  }],
  jwks: signingKeys(),
  cookies: { keys: ['kuntalaistili-bench-peer-cookie-key'] },
  scopes: ['openid', 'api:read', 'api:write'],
  ttl: { ClientCredentials: 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    // client_credentials tokens are issued for a resource server; every token goes to ours.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== audience) throw new Provider.errors.InvalidTarget();
        const info = { audience, scope: 'api:read api:write', accessTokenTTL: 3600, accessTokenFormat: format };
        if (format === 'jwt') info.jwt = { sign: { alg } };
        return info;
      },
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider on ${issuer}: access tokens ${format}${format === 'jwt' ? ` ${alg}` : ''}, pid ${process.pid}`);
});
