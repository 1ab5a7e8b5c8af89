/**
 * Crash safety of uploads: the built server (`node bin/hearth.js start`) is killed with SIGKILL
 * while uploads stream in. After a restart, every media row that has content has its file, the
 * interrupted uploads left no row, and their partial files are cleaned up.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { connectDatabase } from '../../src/db/connect.js';
import { freePort, freshDatabase } from '../helpers/server.js';

const BIN = new URL('../../../bin/hearth.js', import.meta.url).pathname;

describe('uploads survive a crash of the server process', { timeout: 90_000 }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('SIGKILL mid-upload leaves no row without its file, and no partial file after restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const port = await freePort();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(
      file,
      YAML.stringify({
        server_name: 'localhost',
        listen: `127.0.0.1:${port}`,
        data_dir: dir,
        database: { url: db.url },
        registration_shared_secret: 'x',
        form_secret: 'y',
        rate_limits: { enabled: false },
        log_level: 'warn',
      }),
    );
    const env = { ...(process.env as Record<string, string>) };
    const made = spawnSync(process.execPath, [BIN, 'register-user', 'crash', '--password', 'pw', '--config', file], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(made.status, 0, made.stderr);

    let proc: ChildProcess | undefined;
    cleanups.push(() => {
      proc?.kill('SIGKILL');
    });
    const start = async () => {
      proc = spawn(process.execPath, [BIN, 'start', '--config', file], { env, stdio: 'ignore' });
      for (let i = 0; i < 200; i++) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/_matrix/client/versions`);
          if (r.ok) return;
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('server did not start');
    };
    await start();
    const login = await fetch(`http://127.0.0.1:${port}/_matrix/client/v3/login`, {
      method: 'POST',
      body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'crash' }, password: 'pw' }),
    });
    const token = ((await login.json()) as { access_token: string }).access_token;

    // Some uploads complete before the crash.
    const done: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/_matrix/media/v3/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(200_000, i + 1),
      });
      assert.equal(r.status, 200);
      done.push(((await r.json()) as { content_uri: string }).content_uri);
    }

    // Three slow uploads are in flight (declared 20 MB, 64 KB every 20 ms: still sending after
    // 6 s, however loaded the machine) when the process dies.
    let sentBytes = 0;
    const slow = [0, 1, 2].map(
      (n) =>
        new Promise<void>((resolve) => {
          const req = request({
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/_matrix/media/v3/upload',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 20_000_000 },
          });
          req.on('error', () => resolve());
          req.on('close', () => resolve());
          const timer = setInterval(() => {
            // Counted once the chunk is handed to the socket.
            req.write(Buffer.alloc(64 * 1024, 100 + n), () => {
              sentBytes += 64 * 1024;
            });
          }, 20);
          req.on('close', () => clearInterval(timer));
        }),
    );
    for (let i = 0; sentBytes < 3 * 300_000; i++) {
      if (i > 1000) throw new Error(`uploads stalled after ${sentBytes} bytes`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const partialDir = join(dir, 'media', 'tmp');
    const hasPartial = () => existsSync(partialDir) && readdirSync(partialDir).some((n) => n.endsWith('.part'));
    // A loaded server may take a moment to open its temporary files.
    for (let i = 0; i < 100 && !hasPartial(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(hasPartial(), 'partial files exist while uploading');
    proc!.kill('SIGKILL');
    await new Promise((r) => proc!.once('exit', r));
    await Promise.all(slow);

    await start();
    // The restarted server serves the completed uploads.
    for (const mxc of done) {
      const r = await fetch(`http://127.0.0.1:${port}/_matrix/client/v1/media/download/${mxc.slice(6)}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      assert.equal((await r.arrayBuffer()).byteLength, 200_000);
    }
    assert.deepEqual(readdirSync(partialDir).filter((n) => n.endsWith('.part')), [], 'partial files are removed at start');
    const exited = new Promise((r) => proc!.once('exit', r));
    proc!.kill('SIGTERM');
    await exited;

    // Every row with content has its file; the interrupted uploads made no rows.
    const conn = await connectDatabase({ url: db.url, sqliteSynchronous: 'NORMAL', poolSize: 1 });
    try {
      const rows = await conn.db.selectFrom('local_media').select(['media_id', 'sha256', 'size']).execute();
      assert.equal(rows.length, 3, 'only the completed uploads have rows');
      for (const r of rows) {
        const sha = r.sha256!;
        assert.ok(existsSync(join(dir, 'media', sha.slice(0, 2), sha.slice(2, 4), sha)), `file of ${r.media_id}`);
      }
    } finally {
      await conn.close();
    }
  });
});
