import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

/**
 * Push outcomes stored per event for the room (push/push-outcomes-store.ts),
 * rules evaluated once for the members with the server defaults: counts and
 * GET /notifications per member as the spec's rules give them.
 */
describe('Push in a room of 200 members with mixed rulesets (spec: modules/push.md)', () => {
  let server: TestServer;
  let owner: TestUser;
  let members: TestUser[];
  let roomId: string;
  const MUTED = new Set<number>();
  const KEYWORD = new Set<number>();
  before(async () => {
    server = await startTestServer();
    owner = await server.registerUser();
    members = [];
    for (let i = 0; i < 199; i += 10) {
      members.push(...(await Promise.all(Array.from({ length: Math.min(10, 199 - i) }, () => server.registerUser()))));
    }
    const res = await server.request('POST', `${V3}/createRoom`, { token: owner.accessToken, body: { preset: 'public_chat' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    roomId = res.body.room_id;
    for (let i = 0; i < members.length; i += 10) {
      await Promise.all(
        members.slice(i, i + 10).map(async (m) => {
          const j = await server.request('POST', `${V3}/join/${encodeURIComponent(roomId)}`, { token: m.accessToken, body: {} });
          assert.equal(j.status, 200, JSON.stringify(j.body));
        }),
      );
    }
    // Every 7th member mutes the room; every 11th highlights on the word "cake".
    for (let i = 0; i < members.length; i++) {
      if (i % 7 === 3) MUTED.add(i);
      else if (i % 11 === 5) KEYWORD.add(i);
    }
    for (const i of MUTED) await rule(members[i]!, `room/${encodeURIComponent(roomId)}`, { actions: [] });
    for (const i of KEYWORD) await rule(members[i]!, 'content/cake', { pattern: 'cake', actions: ['notify', { set_tweak: 'highlight' }] });
  });
  after(async () => {
    await server.stop();
  });

  async function rule(u: TestUser, path: string, body: unknown): Promise<void> {
    const res = await server.request('PUT', `${V3}/pushrules/global/${path}`, { token: u.accessToken, body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  let txn = 0;
  async function send(u: TestUser, content: Record<string, unknown>): Promise<string> {
    const res = await server.request('PUT', `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b${++txn}`, { token: u.accessToken, body: content });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.event_id;
  }

  const counts = async (u: TestUser) => (await server.hs.ctx.services.push.getUnreadCounts(u.userId, [roomId])).get(roomId)!;
  const receipt = (u: TestUser, eventId: string) =>
    server.request('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`, { token: u.accessToken, body: {} });

  it('counts every member right, and one message writes one outcome row plus a row per member whose outcome differs', async () => {
    const db = server.hs.ctx.db;
    const mentioned = [members[0]!, members[1]!];
    await send(owner, { msgtype: 'm.text', body: 'hello' });
    const before = await db.selectFrom('push_outcome_exceptions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const cake = await send(owner, { msgtype: 'm.text', body: 'cake for everyone', 'm.mentions': { user_ids: mentioned.map((m) => m.userId) } });
    await send(owner, { msgtype: 'm.notice', body: 'a bot says' });

    const pos = await server.hs.ctx.services.rooms.getEventStreamPos(cake);
    const outcome = await db.selectFrom('push_outcomes').selectAll().where('room_id', '=', roomId).where('stream_pos', '=', pos!).execute();
    assert.equal(outcome.length, 1);
    assert.equal(outcome[0]!.base, 1);
    const after = await db.selectFrom('push_outcome_exceptions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    // Muted members, keyword members and the two mentioned: nobody else.
    const mentionedIdx = new Set([0, 1]);
    const differing = members.filter((_, i) => MUTED.has(i) || KEYWORD.has(i) || mentionedIdx.has(i)).length;
    assert.equal(Number(after.n) - Number(before.n), differing);

    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      const want = MUTED.has(i)
        ? { notification_count: 0, highlight_count: 0 }
        : { notification_count: 2, highlight_count: KEYWORD.has(i) || mentionedIdx.has(i) ? 1 : 0 };
      assert.deepEqual(await counts(m), want, `member ${i}`);
    }
    assert.deepEqual(await counts(owner), { notification_count: 0, highlight_count: 0 });

    // GET /notifications of a mentioned member: both messages, the mention highlighted.
    const n = await server.request('GET', `${V3}/notifications`, { token: members[0]!.accessToken });
    assert.equal(n.status, 200);
    assert.equal(n.body.notifications.length, 2);
    assert.equal(n.body.notifications[0].event.event_id, cake);
    assert.ok(n.body.notifications[0].actions.some((a: { set_tweak?: string }) => a.set_tweak === 'highlight'));
    const muted = await server.request('GET', `${V3}/notifications`, { token: members[3]!.accessToken });
    assert.deepEqual(muted.body.notifications, []);

    for (const m of members) assert.equal((await receipt(m, cake)).status, 200);
  });

  it('a member who edits their rules is evaluated with the new rules on the next message, and back with the defaults after', async () => {
    const m = members[20]!;
    assert.ok(!MUTED.has(20) && !KEYWORD.has(20));
    await rule(m, 'content/pie', { pattern: 'pie', actions: ['notify', { set_tweak: 'highlight' }] });
    await send(owner, { msgtype: 'm.text', body: 'pie time' });
    assert.deepEqual(await counts(m), { notification_count: 1, highlight_count: 1 });
    assert.deepEqual(await counts(members[21]!), { notification_count: 1, highlight_count: 0 });
    const del = await server.request('DELETE', `${V3}/pushrules/global/content/pie`, { token: m.accessToken });
    assert.equal(del.status, 200);
    await send(owner, { msgtype: 'm.text', body: 'more pie' });
    assert.deepEqual(await counts(m), { notification_count: 2, highlight_count: 1 });
    // Disabling a default rule: a message (.m.rule.message) no longer notifies.
    const off = await server.request('PUT', `${V3}/pushrules/global/underride/.m.rule.message/enabled`, { token: m.accessToken, body: { enabled: false } });
    assert.equal(off.status, 200);
    await send(owner, { msgtype: 'm.text', body: 'plain' });
    assert.deepEqual(await counts(m), { notification_count: 2, highlight_count: 1 });
    assert.deepEqual(await counts(members[21]!), { notification_count: 3, highlight_count: 0 });
  });

  it('a member who left is not counted nor notified until they join again, and then only for what came after', async () => {
    const m = members[30]!;
    assert.ok(!MUTED.has(30) && !KEYWORD.has(30));
    const last = await send(owner, { msgtype: 'm.text', body: 'before leaving' });
    assert.equal((await receipt(m, last)).status, 200);
    const leave = await server.request('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/leave`, { token: m.accessToken, body: {} });
    assert.equal(leave.status, 200);
    await send(owner, { msgtype: 'm.text', body: 'while away', 'm.mentions': { user_ids: [m.userId] } });
    await send(owner, { msgtype: 'm.text', body: 'still away' });
    const j = await server.request('POST', `${V3}/join/${encodeURIComponent(roomId)}`, { token: m.accessToken, body: {} });
    assert.equal(j.status, 200);
    assert.deepEqual(await counts(m), { notification_count: 0, highlight_count: 0 });
    const back = await send(owner, { msgtype: 'm.text', body: 'welcome back' });
    assert.deepEqual(await counts(m), { notification_count: 1, highlight_count: 0 });
    const n = await server.request('GET', `${V3}/notifications?limit=1`, { token: m.accessToken });
    assert.equal(n.body.notifications[0].event.event_id, back);
    const all = await server.request('GET', `${V3}/notifications?limit=100`, { token: m.accessToken });
    assert.ok(!all.body.notifications.some((x: { event: { content: { body: string } } }) => x.event.content.body.includes('away')));
  });

  it('members joined before outcomes were kept per room get their span with the next stored event', async () => {
    const m = members[40]!;
    const db = server.hs.ctx.db;
    // As a database upgraded from the per-member layout has it: no span for a member joined before.
    await db.deleteFrom('push_member_spans').where('user_id', '=', m.userId).where('room_id', '=', roomId).execute();
    const last = await send(owner, { msgtype: 'm.text', body: 'x' });
    assert.equal((await receipt(m, last)).status, 200);
    // A fresh service, as after a restart: its cache of open spans is empty.
    await server.restart();
    await send(owner, { msgtype: 'm.text', body: 'after the upgrade' });
    assert.deepEqual(await counts(m), { notification_count: 1, highlight_count: 0 });
  });
  it('GET /notifications merges the rooms newest first across pages', async () => {
    const m = members[50]!;
    assert.ok(!MUTED.has(50) && !KEYWORD.has(50));
    const other = await server.request('POST', `${V3}/createRoom`, { token: owner.accessToken, body: { preset: 'public_chat' } });
    const otherId: string = other.body.room_id;
    assert.equal((await server.request('POST', `${V3}/join/${encodeURIComponent(otherId)}`, { token: m.accessToken, body: {} })).status, 200);
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) {
      sent.push(await send(owner, { msgtype: 'm.text', body: `big ${i}` }));
      const r = await server.request('PUT', `${V3}/rooms/${encodeURIComponent(otherId)}/send/m.room.message/o${i}`, { token: owner.accessToken, body: { msgtype: 'm.text', body: `other ${i}` } });
      sent.push(r.body.event_id);
    }
    const seen: string[] = [];
    let from: string | undefined;
    while (seen.length < sent.length) {
      const page = await server.request('GET', `${V3}/notifications?limit=2${from ? `&from=${from}` : ''}`, { token: m.accessToken });
      assert.equal(page.status, 200);
      seen.push(...page.body.notifications.map((n: { event: { event_id: string } }) => n.event.event_id));
      from = page.body.next_token;
      assert.ok(from, 'more pages');
    }
    assert.deepEqual(seen.slice(0, sent.length), [...sent].reverse());
  });
});
