/** `GET /_matrix/federation/v1/version` (version.yaml): the implementation's name and version. */
import type { FederationRoute } from '../router.js';

export function versionRoute(version: string): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/version',
    auth: 'none',
    handler: () => ({ server: { name: 'Hearth', version } }),
  };
}
