/**
 * `GET /_matrix/federation/v1/openid/userinfo` (server-server openid.yaml):
 * a third party exchanges an OpenID token a user gave it for the user's id.
 * The token is the only credential: no X-Matrix signature is asked for.
 */
import { MatrixError } from '../../http/errors.js';
import type { FederationRoute } from '../router.js';

export function openIdUserinfoRoute(userOf: (token: string) => Promise<string | null>): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/openid/userinfo',
    auth: 'none',
    handler: async (req) => {
      const token = (req.query as { access_token?: unknown }).access_token;
      const userId = typeof token === 'string' && token !== '' ? await userOf(token) : null;
      if (userId === null) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Access token unknown or expired');
      return { sub: userId };
    },
  };
}
