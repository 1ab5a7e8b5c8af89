#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=2
// A small young generation keeps the resident size low (a Raspberry Pi has
// little memory). The glibc setting keeps memory freed after a burst from
// staying resident: password hashing allocates 16 MiB at a time; once such a
// block is freed, glibc raises its threshold for giving large blocks their
// own mapping, and later ones come from heaps it seldom returns, which left
// a server at about twice its working size after a busy spell. `npm start`
// sets the same.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

// V8 lets the old generation grow to up to four times what survived the last
// full collection on a machine with a lot of memory (a quarter of it is its
// heap limit), so a burst of work, such as the initial sync of a user in
// 1,000 rooms, left the heap at 170 MB for 45 MB of live data. Growing by half
// at most keeps the peak near what the work needs, for a few more collections.
v8.setFlagsFromString('--heap-growing-percent=50');

// The bundle (npm run build makes both); the per-file build when only tsc has run.
const entry = [new URL('../dist/hearth.mjs', import.meta.url), new URL('../dist/src/cli/main.js', import.meta.url)].find((u) =>
  existsSync(fileURLToPath(u)),
);
if (!entry) {
  console.error('Hearth is not built yet: run `npm install` (or `npm run build`) in the project folder first.');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
