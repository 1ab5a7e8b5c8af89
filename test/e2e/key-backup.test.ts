/**
 * Server-side key backup with matrix-js-sdk's Rust crypto, as Element uses it: alice's device
 * backs up its megolm keys, she signs in on a new device that has never seen them, enters the
 * backup's recovery key, restores the keys from the server and reads her old encrypted history
 * (spec: end_to_end_encryption.md "Server-side key backups").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import { type ServerWatch, loginAndStart, sdk, stopClients, waitUntil, waitUntilAsync, watchServer } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const STEP = { timeout: 40_000 };
const MEGOLM = 'm.megolm.v1.aes-sha2';

function timelineEvent(client: MatrixClient, roomId: string, eventId: string): MatrixEvent | undefined {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
}

describe('a new device restores encrypted history from the server-side key backup', { timeout: 120_000 }, () => {
  let server: TestServer;
  let watch: ServerWatch;
  let user: TestUser;
  let first: MatrixClient | undefined;
  let second: MatrixClient | undefined;
  let roomId: string;
  const sent: { id: string; body: string }[] = [];
  let recoveryKey: string;
  let backupVersion: string;

  before(async () => {
    server = await startTestServer();
    watch = watchServer(server);
    user = await server.registerUser(`backup${process.pid}`);
  });

  after(async () => {
    await stopClients(first, second);
    await server?.stop();
  });

  it('the first device writes encrypted messages and backs up their keys', STEP, async () => {
    first = await loginAndStart(server, user, { crypto: true });
    const crypto = first.getCrypto()!;
    roomId = (
      await first.createRoom({
        name: 'Diary',
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
      })
    ).room_id;
    await waitUntil(() => first!.getRoom(roomId)?.hasEncryptionStateEvent(), 'the client knows the room is encrypted');
    for (const body of ['Dear diary, day one', 'Day two: still secret']) {
      const { event_id } = await first.sendTextMessage(roomId, body);
      sent.push({ id: event_id, body });
    }

    // A new backup version, signed by this device; the SDK then uploads every key it holds.
    await crypto.resetKeyBackup();
    backupVersion = (await waitUntilAsync(() => crypto.getActiveSessionBackupVersion(), 'the backup is enabled', 20_000))!;
    const info = await waitUntilAsync(async () => {
      const res = await server.request('GET', '/_matrix/client/v3/room_keys/version', { token: user.accessToken });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.count > 0 ? res.body : undefined;
    }, 'the room key reached the backup', 30_000);
    assert.equal(info.version, backupVersion);
    assert.equal(info.algorithm, 'm.megolm_backup.v1.curve25519-aes-sha2');
    assert.ok(info.auth_data.signatures?.[user.userId], 'the backup is signed by its creator');

    const keys = await server.request('GET', `/_matrix/client/v3/room_keys/keys/${encodeURIComponent(roomId)}?version=${backupVersion}`, { token: user.accessToken });
    assert.equal(keys.status, 200);
    const sessions = Object.values(keys.body.sessions) as { session_data: { ciphertext: string } }[];
    assert.ok(sessions.length >= 1, 'the room has a backed-up session');
    assert.ok(!JSON.stringify(keys.body).includes('Dear diary'), 'the server holds only ciphertext');

    const { encodeRecoveryKey } = await import('matrix-js-sdk/lib/crypto-api/index.js');
    const privateKey = await crypto.getSessionBackupPrivateKey();
    assert.ok(privateKey, 'the device holds the backup decryption key');
    recoveryKey = encodeRecoveryKey(privateKey)!;
    assert.match(recoveryKey, /^E[sS]/);

    // The first device goes away: nobody can forward keys to the second one.
    await stopClients(first);
    first = undefined;
  });

  it('a second device cannot read the history until it restores the backup with the recovery key', STEP, async () => {
    assert.ok(recoveryKey, 'an earlier step failed');
    second = await loginAndStart(server, user, { crypto: true, initialSyncLimit: 30 });
    const crypto = second.getCrypto()!;
    for (const m of sent) {
      await waitUntil(() => {
        const e = timelineEvent(second!, roomId, m.id);
        return e && !e.isBeingDecrypted() && e.isDecryptionFailure() ? e : undefined;
      }, `the new device sees ${m.id} but cannot decrypt it yet`);
    }

    const { decodeRecoveryKey } = await import('matrix-js-sdk/lib/crypto-api/index.js');
    await crypto.storeSessionBackupPrivateKey(decodeRecoveryKey(recoveryKey), backupVersion);
    const result = await crypto.restoreKeyBackup();
    assert.ok(result.total >= 1, `keys in the backup: ${JSON.stringify(result)}`);
    assert.equal(result.imported, result.total);

    for (const m of sent) {
      const ev = await waitUntil(() => {
        const e = timelineEvent(second!, roomId, m.id);
        return e && !e.isBeingDecrypted() && e.getType() === 'm.room.message' ? e : undefined;
      }, `the new device decrypts ${m.id} with the restored key`, 20_000);
      assert.equal(ev.getWireType(), 'm.room.encrypted');
      assert.equal(ev.getClearContent()?.body, m.body);
    }
  });

  it('no request the clients made was answered with a 5xx or an unknown endpoint for key backup', () => {
    assert.deepEqual(watch.serverErrors, []);
    assert.deepEqual([...watch.unrecognized].filter((u) => u.includes('room_keys')), []);
  });
});
