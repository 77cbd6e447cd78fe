// A real OpenID provider on loopback for rida's OIDC test: panva's
// certified oidc-provider, issuing JWT access tokens by the
// client_credentials grant. It prints "ISSUER <url>" when it listens.
//
// Each client stands for a user (the preferred_username and groups claims
// it puts in its tokens); "alice-short" gets tokens that live one second.
// Clients ending in "-opaque" get opaque tokens, which rida checks by RFC
// 7662 introspection as the confidential client "rida" (introspection
// and revocation are on). Resource indicators choose the audience:
// https://rida.test/ is rida, anything else is another service.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const users = {
  'alice-cli': { preferred_username: 'alice', groups: ['packager'] },
  'alice-short': { preferred_username: 'alice', groups: ['packager'] },
  'bob-cli': { preferred_username: 'bob', groups: ['packager'] },
  'eve-cli': { preferred_username: 'eve', groups: ['guests'] },
  'boss-cli': { preferred_username: 'boss', groups: ['rida-admins'] },
  'carol-opaque': { preferred_username: 'carol', groups: ['packager'] },
  'carol-short-opaque': { preferred_username: 'carol', groups: ['packager'] },
  'mallory-opaque': { preferred_username: 'mallory', groups: ['guests'] },
  // rida itself: the client that introspects.
  rida: {},
};
const scope = 'rida-submit other';

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...key, kid: 'test', use: 'sig', alg: 'RS256' }] },
    clients: Object.keys(users).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret`,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope,
    })),
    scopes: ['openid', ...scope.split(' ')],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://rida.test/',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => ({
          scope,
          audience: resource,
          accessTokenTTL: client.clientId.includes('-short') ? 1 : 600,
          accessTokenFormat: client.clientId.endsWith('-opaque') ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => users[token.clientId],
  });
  server.on('request', provider.callback());
  console.log(`ISSUER ${issuer}`);
});
