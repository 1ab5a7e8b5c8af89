import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

// The bundle `npm run build` makes (`npm test` builds it first).
const BUNDLE = new URL('../../hearth.mjs', import.meta.url);

describe('the server bundle', () => {
  const source = readFileSync(BUNDLE, 'utf8');

  // Each is loaded on first use from node_modules: neither inlined (parsed by every server at
  // start-up) nor imported statically (loaded at start-up all the same). The marker is an error
  // code only the library's own code holds.
  for (const { name, marker } of [
    { name: 'undici', marker: 'UND_ERR_' },
    { name: 'nodemailer', marker: 'EENVELOPE' },
  ]) {
    it(`loads ${name} only on first use`, () => {
      assert.ok(!source.includes(marker), `${name} is inlined in the bundle`);
      assert.ok(source.includes(`import("${name}")`), `the bundle does not import ${name} on first use`);
      // `import{...}from"x"`, `import"x"`, or `require("x")` / `__require("x")` from bundled CommonJS.
      const statically = new RegExp(`(?:\\bfrom\\s*|\\bimport\\s*|require\\()["']${name}["']`);
      assert.ok(!statically.test(source), `the bundle loads ${name} at start-up`);
    });
  }
});
