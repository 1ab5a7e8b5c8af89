/**
 * Client discovery when the operator set only HEARTH_SERVER_NAME and HEARTH_LISTEN (no
 * public_baseurl): the served `/.well-known/matrix/client` must send a real client to a base URL
 * that reaches this server, and the client must be able to log in there
 * (spec: client-server-api "Well-known URIs", "Server discovery").
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clientBaseUrl } from '../../src/config/base-url.js';
import { loadConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';
import { createHomeserver, type Homeserver } from '../../src/homeserver.js';
import { createLogger } from '../../src/logger.js';
import { sdk, sdkLogin } from '../helpers/matrix-client.js';
import { freshDatabase } from '../helpers/server.js';

describe('well-known client discovery with HEARTH_SERVER_NAME and HEARTH_LISTEN only', () => {
  let hs: Homeserver;
  let dataDir: string;
  let db: { url: string; drop(): Promise<void> };
  let port: number;
  let configuredBaseUrl: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hearth-wk-'));
    db = await freshDatabase();
    const loaded = loadConfig({
      env: {
        HEARTH_DATA_DIR: dataDir,
        HEARTH_DATABASE_URL: db.url,
        HEARTH_SERVER_NAME: 'localhost',
        // All interfaces, a port chosen by the system: the base URL is known only once listening.
        HEARTH_LISTEN: '0.0.0.0:0',
        HEARTH_LOG_LEVEL: process.env.HEARTH_TEST_LOG ?? 'silent',
        HEARTH_RATE_LIMITS: 'off',
      },
    });
    configuredBaseUrl = loaded.config.public_baseurl;
    hs = await createHomeserver(loaded, { logger: createLogger(loaded.config.log_level) });
    port = Number(new URL(await hs.start()).port);
  });

  after(async () => {
    await hs?.stop();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('no public_baseurl is made up from the server name (http://<server name>/ is port 80)', () => {
    assert.equal(configuredBaseUrl, '');
  });

  it('serves a base URL on the port the server listens on', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/.well-known/matrix/client`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { 'm.homeserver': { base_url: string } };
    assert.equal(body['m.homeserver'].base_url, `http://localhost:${port}`);
    const versions = await fetch(`${body['m.homeserver'].base_url}/_matrix/client/versions`);
    assert.equal(versions.status, 200);
  });

  it("matrix-js-sdk's AutoDiscovery finds the server and the client logs in at the discovered URL", async () => {
    const { AutoDiscovery } = await sdk();
    // findClientConfig takes a domain with a scheme as is (https is only the default).
    const found = await AutoDiscovery.findClientConfig(`http://localhost:${port}`);
    assert.equal(found['m.homeserver'].state, AutoDiscovery.SUCCESS, JSON.stringify(found));
    const baseUrl = found['m.homeserver'].base_url!;
    assert.equal(baseUrl, `http://localhost:${port}`);

    const password = 'wk-secret-pw';
    const { userId } = await hs.ctx.services.accounts.createUser({ localpart: `wk${process.pid}`, password });
    const creds = await sdkLogin(baseUrl, { userId, password });
    assert.equal(creds.userId, userId);
    assert.ok(creds.accessToken);
  });
});

describe('well-known client discovery with an explicit public_baseurl', () => {
  it('HEARTH_PUBLIC_BASEURL is served as configured, without the trailing slash', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hearth-wk-'));
    try {
      const loaded = loadConfig({
        env: {
          HEARTH_DATA_DIR: dataDir,
          HEARTH_SERVER_NAME: 'example.org',
          HEARTH_LISTEN: '0.0.0.0:8008',
          HEARTH_PUBLIC_BASEURL: 'https://matrix.example.org/',
        },
      });
      assert.equal(loaded.config.public_baseurl, 'https://matrix.example.org/');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('without public_baseurl the base URL follows the listen address', () => {
    const cfg = (server_name: string, listen: string) => ({ ...defaultConfig(), server_name, listen });
    assert.equal(clientBaseUrl(cfg('localhost', 'localhost:8008')), 'http://localhost:8008');
    assert.equal(clientBaseUrl(cfg('example.org', '0.0.0.0:9000')), 'http://example.org:9000');
    assert.equal(clientBaseUrl(cfg('example.org:8448', '[::]:9000')), 'http://example.org:9000');
    assert.equal(clientBaseUrl(cfg('example.org', '192.0.2.7:8008')), 'http://192.0.2.7:8008');
    assert.equal(clientBaseUrl(cfg('example.org', '::1:8008')), 'http://[::1]:8008');
    assert.equal(clientBaseUrl(cfg('example.org', '127.0.0.1:0'), 41234), 'http://127.0.0.1:41234');
    assert.equal(clientBaseUrl({ ...cfg('example.org', '0.0.0.0:8008'), public_baseurl: 'https://m.example.org/' }), 'https://m.example.org');
  });

  it('a generated config file does not pin a base URL', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hearth-wk-'));
    try {
      const a = loadConfig({ env: { HEARTH_DATA_DIR: dataDir, HEARTH_SERVER_NAME: 'example.org', HEARTH_LISTEN: '0.0.0.0:9000' } });
      assert.equal(a.generated, true);
      assert.equal(a.config.public_baseurl, '');
      assert.doesNotMatch(readFileSync(a.file, 'utf8'), /public_baseurl/);
      assert.equal(clientBaseUrl(a.config), 'http://example.org:9000');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
