#!/usr/bin/env -S node --max-semi-space-size=2
// A small young generation keeps the resident size low (a Raspberry Pi has
// little memory); `npm start` passes the same flag.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('Hearth is not built yet: run `npm install` (or `npm run build`) in the project folder first.');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
