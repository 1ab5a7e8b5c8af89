// The hang report scripts/test.mjs loads into every test file's process: a file still running at
// HEARTH_TEST_HANG_REPORT_MS names what it holds open.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const preload = new URL('../helpers/hang-report.js', import.meta.url).href;

function runHolding(name: string, reportAfterMs: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'hang-report-'));
  try {
    const file = join(dir, name);
    // Holds a listening server and a timer, then lets go of both after 1.5 s.
    writeFileSync(file, `const { createServer } = require('node:http');
const server = createServer().listen(0, '127.0.0.1');
const held = setTimeout(() => {}, 60_000);
setTimeout(() => { server.close(); clearTimeout(held); }, 1500);
`);
    const r = spawnSync(process.execPath, [`--import=${preload}`, file], {
      env: { ...process.env, HEARTH_TEST_HANG_REPORT_MS: String(reportAfterMs) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a test file still running at the report time names its open server and timers, then ends as it would', () => {
  const stderr = runHolding('holding.test.js', 300);
  assert.match(stderr, /hang report for .*holding\.test\.js after 300 ms/);
  assert.match(stderr, /Server listening on \{"address":"127\.0\.0\.1"/);
  assert.match(stderr, /after 300 ms: .*Timeout/);
});

test('no report before its time, nor in a process that is not a test file', () => {
  assert.equal(runHolding('quick.test.js', 10_000), '');
  assert.equal(runHolding('runner.js', 300), '');
});
