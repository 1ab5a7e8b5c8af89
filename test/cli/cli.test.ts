import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import postgres from 'postgres';
import { freePort, TEST_DB } from '../helpers/server.js';

const BIN = new URL('../../../bin/hearth.js', import.meta.url).pathname;
const PG_ADMIN = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function freshEnv(): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const env: Record<string, string> = { ...(process.env as Record<string, string>), HEARTH_DATA_DIR: dir, HEARTH_LOG_LEVEL: 'warn' };
  if (TEST_DB === 'postgres') {
    const name = `hearth_cli_${process.pid}_${Date.now()}`;
    const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const u = new URL(PG_ADMIN);
    u.pathname = `/${name}`;
    env.HEARTH_DATABASE_URL = u.toString();
    cleanups.push(async () => {
      const a = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    });
  }
  return env;
}

function hearth(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8', timeout: 60_000 });
}

describe('hearth CLI', () => {
  it('--version and --help answer without a config', () => {
    const v = hearth(['--version'], { ...(process.env as Record<string, string>) });
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
    const h = hearth(['--help'], { ...(process.env as Record<string, string>) });
    assert.equal(h.status, 0);
    assert.match(h.stdout, /register-user/);
  });

  it('an unknown command prints usage and exits 2, without a stack trace', () => {
    const r = hearth(['frobnicate'], { ...(process.env as Record<string, string>) });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });

  it('a broken config file is reported by file and key, without a stack trace', async () => {
    const env = await freshEnv();
    env.HEARTH_REGISTRATION = 'sometimes';
    const r = hearth(['migrate'], env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /hearth\.yaml/);
    assert.match(r.stderr, /registration/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });

  it('register-user creates a user who can log in; a duplicate is refused clearly', async () => {
    const env = await freshEnv();
    const made = hearth(['register-user', 'alice', '--admin', '--password', 'correct horse'], env);
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout, /@alice:localhost/);
    const dup = hearth(['register-user', 'alice', '--password', 'x'], env);
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /M_USER_IN_USE/);
    // The password can come from standard input.
    const piped = hearth(['register-user', 'bob'], env, 'piped secret\n');
    assert.equal(piped.status, 0, piped.stderr);

    const port = await freePort();
    const proc = spawn(process.execPath, [BIN, 'start'], { env: { ...env, HEARTH_LISTEN: `127.0.0.1:${port}` }, stdio: 'ignore' });
    cleanups.push(() => {
      proc.kill('SIGKILL');
    });
    let res: Response | undefined;
    for (let i = 0; i < 100 && !res; i++) {
      try {
        res = await fetch(`http://127.0.0.1:${port}/_matrix/client/v3/login`, {
          method: 'POST',
          body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'piped secret' }),
        });
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(res?.status, 200);
    const body = (await res!.json()) as { user_id: string };
    assert.equal(body.user_id, '@bob:localhost');

    // SIGTERM shuts down cleanly with exit code 0.
    const code = await new Promise<number | null>((resolve) => {
      proc.once('exit', (c) => resolve(c));
      proc.kill('SIGTERM');
    });
    assert.equal(code, 0);
  });
});
