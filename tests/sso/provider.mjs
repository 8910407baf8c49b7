// A real OpenID provider for tests/sso.rs: node-oidc-provider (pinned in package-lock.json)
// on 127.0.0.1:AIRLOCK_OP_PORT, with one confidential client (code flow, PKCE required)
// whose only redirect URI is AIRLOCK_OP_REDIRECT. Its built-in development login form takes
// any login name (the password is ignored); the account's claims come from USERS below.
// Prints one line "listening <issuer>" when it is ready, and runs until killed.
//
// oidc-provider 9.x warns that Node.js 20 is not a supported LTS; what it uses (URL.parse,
// crypto.hash) is present in 20.20, and the tests pin both.
import Provider from 'oidc-provider';

const port = Number(process.env.AIRLOCK_OP_PORT);
const redirect = process.env.AIRLOCK_OP_REDIRECT;
const secret = process.env.AIRLOCK_OP_SECRET;
if (!port || !redirect || !secret) {
  console.error('set AIRLOCK_OP_PORT, AIRLOCK_OP_REDIRECT and AIRLOCK_OP_SECRET');
  process.exit(2);
}

// Test users: carol holds the identity provider group that maps to the `dba` reviewer group;
// dave only holds one that maps to nothing.
const USERS = {
  carol: { groups: ['db-admins', 'staff'] },
  dave: { groups: ['marketing'] },
};

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'airlock',
    client_secret: secret,
    redirect_uris: [redirect],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['airlock-tests-only-not-a-secret'] },
  ttl: { AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.test`,
          email_verified: true,
          groups: USERS[id]?.groups ?? [],
        };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description));

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
