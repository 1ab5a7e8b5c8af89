import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { deviceKeys, otk, otks } from '../e2ee/helpers.js';
import { CLIENT, login, whoami, withPasswordUia } from './helpers.js';

/**
 * Device deletion, login and deactivation each change accounts' tables and
 * e2ee's tables (keys, inbox, the device-lists stream). A request that
 * fails must leave nothing half done (DESIGN section 6). The failure is
 * injected from outside the server: a trigger, created in the test's own
 * database, that makes the last write of these requests (the device list
 * change) fail.
 */

const TRIGGER = 'hearth_test_injected_failure';

/** Makes every insert into `table` fail until the returned function is called. */
async function failInsertsInto(s: TestServer, table: string): Promise<() => Promise<void>> {
  const db = s.hs.ctx.db;
  if (s.hs.ctx.dialect === 'postgres') {
    await sql
      .raw(`create function ${TRIGGER}() returns trigger language plpgsql as $$ begin raise exception 'injected failure'; end $$`)
      .execute(db);
    await sql.raw(`create trigger ${TRIGGER} before insert on ${table} for each row execute function ${TRIGGER}()`).execute(db);
    return async () => {
      await sql.raw(`drop trigger ${TRIGGER} on ${table}`).execute(db);
      await sql.raw(`drop function ${TRIGGER}()`).execute(db);
    };
  }
  await sql.raw(`create trigger ${TRIGGER} before insert on ${table} begin select raise(abort, 'injected failure'); end`).execute(db);
  return async () => {
    await sql.raw(`drop trigger ${TRIGGER}`).execute(db);
  };
}

async function count(s: TestServer, table: string, userId: string, deviceId?: string): Promise<number> {
  const byDevice = deviceId === undefined ? sql`` : sql` and device_id = ${deviceId}`;
  const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where user_id = ${userId}${byDevice}`.execute(s.hs.ctx.db);
  return Number(r.rows[0].n);
}

const DEVICE_TABLES = ['devices', 'access_tokens', 'device_keys', 'one_time_keys', 'fallback_keys', 'to_device'] as const;

/** Rows per table for one device (or all of the user's devices). */
async function deviceRows(s: TestServer, userId: string, deviceId?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of DEVICE_TABLES) out[t] = await count(s, t, userId, deviceId);
  return out;
}

describe('multi-table account changes commit in one transaction', () => {
  let s: TestServer;

  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.stop();
  });

  /** A device with keys, a fallback key and a to-device message waiting for it. */
  async function deviceWithKeys(owner: TestUser): Promise<TestUser> {
    const d = await login(s, owner);
    const up = await s.request('POST', `${CLIENT}/keys/upload`, {
      token: d.accessToken,
      body: { device_keys: deviceKeys(d), one_time_keys: otks(d, 3), fallback_keys: { 'signed_curve25519:FB0': otk(d, true) } },
    });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const todev = await s.request('PUT', `${CLIENT}/sendToDevice/org.example.ping/t${Date.now()}${d.deviceId}`, {
      token: owner.accessToken,
      body: { messages: { [owner.userId]: { [d.deviceId]: { hello: 1 } } } },
    });
    assert.equal(todev.status, 200, JSON.stringify(todev.body));
    return d;
  }

  const full = { devices: 1, access_tokens: 1, device_keys: 1, one_time_keys: 3, fallback_keys: 1, to_device: 1 };
  const none = { devices: 0, access_tokens: 0, device_keys: 0, one_time_keys: 0, fallback_keys: 0, to_device: 0 };

  it('DELETE /devices/{id}: a failure in the device list change leaves the device, its tokens and keys; the retry removes all of them', async () => {
    const alice = await s.registerUser('atomic_del');
    const victim = await deviceWithKeys(alice);
    assert.deepEqual(await deviceRows(s, alice.userId, victim.deviceId), full);
    const changesBefore = await count(s, 'device_list_changes', alice.userId);

    const restore = await failInsertsInto(s, 'device_list_changes');
    try {
      const res = await withPasswordUia(s, 'DELETE', `${CLIENT}/devices/${encodeURIComponent(victim.deviceId)}`, alice);
      assert.equal(res.status, 500);
    } finally {
      await restore();
    }
    assert.deepEqual(await deviceRows(s, alice.userId, victim.deviceId), full, 'nothing of the device was removed');
    assert.equal((await whoami(s, victim.accessToken)).status, 200);

    const res = await withPasswordUia(s, 'DELETE', `${CLIENT}/devices/${encodeURIComponent(victim.deviceId)}`, alice);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await deviceRows(s, alice.userId, victim.deviceId), none);
    assert.equal(await count(s, 'device_list_changes', alice.userId), changesBefore + 1);
    assert.equal((await whoami(s, victim.accessToken)).status, 401);
  });

  it('POST /delete_devices: the same, for several devices at once', async () => {
    const bob = await s.registerUser('atomic_bulk');
    const a = await deviceWithKeys(bob);
    const b = await deviceWithKeys(bob);
    const restore = await failInsertsInto(s, 'device_list_changes');
    try {
      const res = await withPasswordUia(s, 'POST', `${CLIENT}/delete_devices`, bob, { devices: [a.deviceId, b.deviceId] });
      assert.equal(res.status, 500);
    } finally {
      await restore();
    }
    for (const d of [a, b]) assert.deepEqual(await deviceRows(s, bob.userId, d.deviceId), full);

    const res = await withPasswordUia(s, 'POST', `${CLIENT}/delete_devices`, bob, { devices: [a.deviceId, b.deviceId] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const d of [a, b]) assert.deepEqual(await deviceRows(s, bob.userId, d.deviceId), none);
  });

  it('login: a failure in the device list change creates neither the device nor the access token', async () => {
    const carol = await s.registerUser('atomic_login');
    const before = await deviceRows(s, carol.userId);
    const restore = await failInsertsInto(s, 'device_list_changes');
    try {
      const res = await s.request('POST', `${CLIENT}/login`, {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: carol.userId }, password: carol.password, device_id: 'NEWDEVICE' },
      });
      assert.equal(res.status, 500);
    } finally {
      await restore();
    }
    assert.deepEqual(await deviceRows(s, carol.userId), before);
    assert.equal(await count(s, 'refresh_tokens', carol.userId), 0);

    const again = await login(s, carol, { device_id: 'NEWDEVICE', refresh_token: true });
    assert.equal(again.deviceId, 'NEWDEVICE');
    assert.equal(await count(s, 'devices', carol.userId, 'NEWDEVICE'), 1);
    assert.equal(await count(s, 'device_list_changes', carol.userId) > 0, true);
  });

  it('POST /account/deactivate: a failure leaves the account active with its devices, keys and profile; the retry deactivates', async () => {
    const dave = await s.registerUser('atomic_deact');
    const other = await deviceWithKeys(dave);
    const before = await deviceRows(s, dave.userId);
    const restore = await failInsertsInto(s, 'device_list_changes');
    try {
      const res = await withPasswordUia(s, 'POST', `${CLIENT}/account/deactivate`, dave, { erase: true });
      assert.equal(res.status, 500);
    } finally {
      await restore();
    }
    const user = await s.hs.ctx.db.selectFrom('users').selectAll().where('user_id', '=', dave.userId).executeTakeFirstOrThrow();
    assert.equal(Number(user.deactivated), 0);
    assert.notEqual(user.password_hash, null);
    assert.deepEqual(await deviceRows(s, dave.userId), before);
    assert.equal((await s.request('GET', `${CLIENT}/profile/${encodeURIComponent(dave.userId)}`)).body.displayname, 'atomic_deact');
    assert.equal((await whoami(s, other.accessToken)).status, 200);

    const res = await withPasswordUia(s, 'POST', `${CLIENT}/account/deactivate`, dave, { erase: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await deviceRows(s, dave.userId), none);
    assert.deepEqual((await s.request('GET', `${CLIENT}/profile/${encodeURIComponent(dave.userId)}`)).body, {});
  });

  it('POST /account/password with logout_devices: a failure keeps the old password and the other devices', async () => {
    const erin = await s.registerUser('atomic_pw');
    const other = await deviceWithKeys(erin);
    const restore = await failInsertsInto(s, 'device_list_changes');
    try {
      const res = await withPasswordUia(s, 'POST', `${CLIENT}/account/password`, erin, { new_password: 'a-new-long-password-1' });
      assert.equal(res.status, 500);
    } finally {
      await restore();
    }
    assert.deepEqual(await deviceRows(s, erin.userId, other.deviceId), full);
    await login(s, erin); // the old password still works
  });
});
