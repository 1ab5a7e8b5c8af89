/** `GET /_matrix/federation/v1/version` (version.yaml): the implementation's name and version. */
import { readFileSync } from 'node:fs';
import type { FederationRoute } from '../router.js';

/** The version in Hearth's package.json, found upwards from this file (compiled per file or bundled). */
export function hearthVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'hearth') return pkg.version;
    } catch {
      /* no package.json here */
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

export function versionRoute(version: string): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/version',
    auth: 'none',
    handler: () => ({ server: { name: 'Hearth', version } }),
  };
}
