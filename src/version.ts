import { readFileSync } from 'node:fs';

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
