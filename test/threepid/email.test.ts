/**
 * Email validation over SMTP, end to end: a loopback SMTP server started here receives the
 * token emails; the flows are driven over HTTP, with matrix-js-sdk where it has the method.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { createSdkClient, sdkLogin, stopClients } from '../helpers/matrix-client.js';
import { freePort, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { TestSmtp, tokenOf } from './smtp.js';

const CLIENT = '/_matrix/client/v3';
let server: TestServer;
let smtp: TestSmtp;
const clients: MatrixClient[] = [];

before(async () => {
  smtp = new TestSmtp();
  await smtp.start();
  server = await startTestServer({
    config: { email: { smtp_host: '127.0.0.1', smtp_port: smtp.port, notif_from: 'Hearth <noreply@localhost>' } },
  });
});
after(async () => {
  await stopClients(...clients);
  await server.stop();
  await smtp.stop();
});

async function client(u: TestUser): Promise<MatrixClient> {
  const c = await createSdkClient(server.url, await sdkLogin(server.url, u));
  clients.push(c);
  return c;
}

/** Submits a token the way a client does: to the submit_url the server gave, on this server's address. */
async function submit(submitUrl: string, body: Record<string, string>) {
  return server.request('POST', new URL(submitUrl).pathname, { body });
}

/** requestToken, then the mailed token back through submit_url; the sid and the mail. */
async function validate(path: string, email: string, secret: string): Promise<{ sid: string }> {
  const seen = smtp.mails.length;
  const res = await server.request('POST', `${CLIENT}${path}`, { body: { client_secret: secret, email, send_attempt: 1 } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const { token } = tokenOf(await smtp.mailTo(email, seen));
  const ok = await submit(res.body.submit_url, { sid: res.body.sid, client_secret: secret, token });
  assert.deepEqual(ok.body, { success: true });
  return { sid: res.body.sid };
}

describe('adding an email address to an account', () => {
  it('requestToken mails a token; submit_url validates; /3pid/add with the password adds it; GET lists it; delete removes it', async () => {
    const alice = await server.registerUser('em_alice');
    const c = await client(alice);
    const seen = smtp.mails.length;
    const requested = await c.requestAdd3pidEmailToken('Alice@Example.ORG', 'secret-1', 1);
    assert.match(requested.sid, /^[0-9a-zA-Z.=_-]+$/);
    assert.ok(requested.submit_url?.endsWith('/_hearth/client/v1/threepid/email/submit_token'));
    const mail = await smtp.mailTo('alice@example.org', seen);
    assert.match(mail.raw, /From: Hearth <noreply@localhost>/);
    const { token: firstToken } = tokenOf(mail);

    // The same send_attempt again sends nothing and answers the same session.
    const mailsBefore = smtp.mails.length;
    const again = await c.requestAdd3pidEmailToken('alice@example.org', 'secret-1', 1);
    assert.equal(again.sid, requested.sid);
    // A higher one sends a new token, in the same session; the first no longer works.
    const reminder = await c.requestAdd3pidEmailToken('alice@example.org', 'secret-1', 2);
    assert.equal(reminder.sid, requested.sid);
    const { token } = tokenOf(await smtp.mailTo('alice@example.org', mailsBefore));
    assert.equal(smtp.mails.length, mailsBefore + 1, 'one mail: for attempt 2, none for the repeated 1');
    assert.notEqual(token, firstToken);
    const stale = await submit(requested.submit_url!, { sid: requested.sid, client_secret: 'secret-1', token: firstToken });
    assert.equal(stale.body.errcode, 'M_TOKEN_INCORRECT');

    // Before validation the session proves nothing.
    const early = await server.request('POST', `${CLIENT}/account/3pid/add`, { token: alice.accessToken, body: { sid: requested.sid, client_secret: 'secret-1' } });
    assert.equal(early.status, 401, 'user-interactive auth first');
    const unvalidated = await server.request('POST', `${CLIENT}/account/3pid/add`, {
      token: alice.accessToken,
      body: { sid: requested.sid, client_secret: 'secret-1', auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, session: early.body.session } },
    });
    assert.equal(unvalidated.status, 403);
    assert.equal(unvalidated.body.errcode, 'M_THREEPID_AUTH_FAILED');

    const wrong = await submit(requested.submit_url!, { sid: requested.sid, client_secret: 'secret-1', token: 'not-the-token' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.errcode, 'M_TOKEN_INCORRECT');
    const ok = await submit(requested.submit_url!, { sid: requested.sid, client_secret: 'secret-1', token });
    assert.deepEqual(ok.body, { success: true });

    await assert.rejects(c.addThreePidOnly({ sid: requested.sid, client_secret: 'secret-1' }), (e: { httpStatus?: number; data?: { flows?: unknown } }) => {
      assert.equal(e.httpStatus, 401);
      return true;
    });
    const first = await server.request('POST', `${CLIENT}/account/3pid/add`, { token: alice.accessToken, body: { sid: requested.sid, client_secret: 'secret-1' } });
    assert.deepEqual(first.body.flows, [{ stages: ['m.login.password'] }]);
    await c.addThreePidOnly({
      sid: requested.sid,
      client_secret: 'secret-1',
      // The SDK's AuthDict type knows no password fields; the server needs them.
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, session: first.body.session } as { type: string },
    });
    const listed = await c.getThreePids();
    assert.equal(listed.threepids.length, 1);
    assert.equal(listed.threepids[0]!.medium, 'email');
    assert.equal(listed.threepids[0]!.address, 'alice@example.org');
    assert.ok(listed.threepids[0]!.validated_at > 0 && listed.threepids[0]!.added_at >= listed.threepids[0]!.validated_at);

    // Another account cannot have the address, nor start validating it for adding.
    const bob = await server.registerUser('em_bob');
    const taken = await server.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { token: bob.accessToken, body: { client_secret: 'b', email: 'ALICE@example.org', send_attempt: 1 } });
    assert.equal(taken.status, 400);
    assert.equal(taken.body.errcode, 'M_THREEPID_IN_USE');
    const reg = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'b', email: 'alice@example.org', send_attempt: 1 } });
    assert.equal(reg.body.errcode, 'M_THREEPID_IN_USE');

    // No identity server ever bound it through this server: nothing to unbind.
    const deleted = await c.deleteThreePid('email', 'alice@example.org');
    assert.equal(deleted.id_server_unbind_result, 'no-support');
    assert.deepEqual((await c.getThreePids()).threepids, []);
  });

  it('bad input: a malformed address or client_secret is M_INVALID_PARAM; msisdn is refused', async () => {
    const bad = await server.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { body: { client_secret: 'x', email: 'not an address', send_attempt: 1 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const secret = await server.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { body: { client_secret: 'a b', email: 'x@example.org', send_attempt: 1 } });
    assert.equal(secret.body.errcode, 'M_INVALID_PARAM');
    const sms = await server.request('POST', `${CLIENT}/account/3pid/msisdn/requestToken`, { body: { client_secret: 'x', country: 'GB', phone_number: '1', send_attempt: 1 } });
    assert.equal(sms.status, 400);
    assert.equal(sms.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
    const unknown = await server.request('POST', '/_hearth/client/v1/threepid/email/submit_token', { body: { sid: 'nope', client_secret: 'x', token: 't' } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errcode, 'M_INVALID_PARAM');
  });
});

describe('addresses in their canonical form (appendices, "3PID Types": Unicode case folding)', () => {
  it('Strauß@Example.COM is added, found, refused to others and deleted as strauss@example.com; accents compose', async () => {
    const hans = await server.registerUser('em_hans');
    const seen = smtp.mails.length;
    const requested = await server.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { body: { client_secret: 'fold-1', email: 'Strauß@Example.COM', send_attempt: 1 } });
    assert.equal(requested.status, 200, JSON.stringify(requested.body));
    // The mail goes to the canonical address.
    const { token } = tokenOf(await smtp.mailTo('strauss@example.com', seen));
    assert.deepEqual((await submit(requested.body.submit_url, { sid: requested.body.sid, client_secret: 'fold-1', token })).body, { success: true });
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: hans.userId }, password: hans.password };
    const first = await server.request('POST', `${CLIENT}/account/3pid/add`, { token: hans.accessToken, body: { sid: requested.body.sid, client_secret: 'fold-1' } });
    const added = await server.request('POST', `${CLIENT}/account/3pid/add`, {
      token: hans.accessToken,
      body: { sid: requested.body.sid, client_secret: 'fold-1', auth: { ...auth, session: first.body.session } },
    });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    const listed = await server.request('GET', `${CLIENT}/account/3pid`, { token: hans.accessToken });
    assert.deepEqual(listed.body.threepids.map((t: { address: string }) => t.address), ['strauss@example.com']);

    // Other spellings of the same address are the same address.
    for (const email of ['STRAUSS@example.com', 'strauß@EXAMPLE.com', 'STRAUẞ@example.com']) {
      const taken = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'fold-2', email, send_attempt: 1 } });
      assert.equal(taken.body.errcode, 'M_THREEPID_IN_USE', email);
    }
    const login = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'STRAUß@example.com' }, password: hans.password },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.user_id, hans.userId);
    const deleted = await server.request('POST', `${CLIENT}/account/3pid/delete`, { token: hans.accessToken, body: { medium: 'email', address: 'Strauss@Example.com' } });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual((await server.request('GET', `${CLIENT}/account/3pid`, { token: hans.accessToken })).body.threepids, []);

    // A name typed with a combining diaeresis is the precomposed one: one session, one token.
    const decomposed = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'fold-3', email: 'Zoe\u0308@example.org', send_attempt: 1 } });
    const precomposed = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'fold-3', email: 'ZO\u00cb@example.org', send_attempt: 1 } });
    assert.equal(decomposed.status, 200, JSON.stringify(decomposed.body));
    assert.equal(precomposed.body.sid, decomposed.body.sid);
  });
});

describe('the emailed link', () => {
  it('sends the browser on to next_link once validated; a link with a wrong token shows an error page; a javascript: next_link is refused', async () => {
    const seen = smtp.mails.length;
    const res = await server.request('POST', `${CLIENT}/register/email/requestToken`, {
      body: { client_secret: 'link-1', email: 'link@example.org', send_attempt: 1, next_link: 'https://client.example/done' },
    });
    assert.equal(res.status, 200);
    const { link } = tokenOf(await smtp.mailTo('link@example.org', seen));
    const u = new URL(link);
    const broken = await fetch(`${server.url}${u.pathname}?sid=${res.body.sid}&client_secret=link-1&token=wrong`, { redirect: 'manual' });
    assert.equal(broken.status, 400);
    assert.match(broken.headers.get('content-type') ?? '', /text\/html/);
    const opened = await fetch(`${server.url}${u.pathname}${u.search}`, { redirect: 'manual' });
    assert.equal(opened.status, 302);
    assert.equal(opened.headers.get('location'), 'https://client.example/done');
    const script = await server.request('POST', `${CLIENT}/register/email/requestToken`, {
      body: { client_secret: 'link-2', email: 'link@example.org', send_attempt: 1, next_link: 'javascript:alert(1)' },
    });
    assert.equal(script.status, 400);
    assert.equal(script.body.errcode, 'M_INVALID_PARAM');
  });
});

describe('registration and password reset by email', () => {
  it('registers with a validated address (the emailed link, opened as a browser would), then resets the password with it', async () => {
    const email = 'carol@example.org';
    const seen = smtp.mails.length;
    const requested = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'reg-1', email, send_attempt: 1 } });
    assert.equal(requested.status, 200);
    const { link } = tokenOf(await smtp.mailTo(email, seen));
    const u = new URL(link);
    const opened = await fetch(`${server.url}${u.pathname}${u.search}`, { redirect: 'manual' });
    assert.equal(opened.status, 200);
    assert.match(await opened.text(), /confirmed/);

    const probe = await server.request('POST', `${CLIENT}/register`, { body: { username: 'em_carol', password: 'first-pw' } });
    assert.equal(probe.status, 401);
    assert.ok(probe.body.flows.some((f: { stages: string[] }) => f.stages.includes('m.login.email.identity')), JSON.stringify(probe.body.flows));
    const done = await server.request('POST', `${CLIENT}/register`, {
      body: { username: 'em_carol', password: 'first-pw', auth: { type: 'm.login.email.identity', threepid_creds: { sid: requested.body.sid, client_secret: 'reg-1' }, session: probe.body.session } },
    });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const listed = await server.request('GET', `${CLIENT}/account/3pid`, { token: done.body.access_token });
    assert.deepEqual(listed.body.threepids.map((t: { address: string }) => t.address), [email]);

    // Password reset: no access token, the address proves the account.
    const unknown = await server.request('POST', `${CLIENT}/account/password/email/requestToken`, { body: { client_secret: 'r', email: 'nobody@example.org', send_attempt: 1 } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errcode, 'M_THREEPID_NOT_FOUND');
    const { sid } = await validate('/account/password/email/requestToken', email, 'reset-1');
    const first = await server.request('POST', `${CLIENT}/account/password`, { body: { new_password: 'second-pw' } });
    assert.equal(first.status, 401);
    assert.deepEqual(first.body.flows, [{ stages: ['m.login.email.identity'] }]);
    const wrongCreds = await server.request('POST', `${CLIENT}/account/password`, {
      body: { new_password: 'second-pw', auth: { type: 'm.login.email.identity', threepid_creds: { sid, client_secret: 'other' }, session: first.body.session } },
    });
    assert.equal(wrongCreds.status, 401);
    assert.equal(wrongCreds.body.errcode, 'M_UNAUTHORIZED');
    const reset = await server.request('POST', `${CLIENT}/account/password`, {
      body: { new_password: 'second-pw', auth: { type: 'm.login.email.identity', threepid_creds: { sid, client_secret: 'reset-1' }, session: first.body.session } },
    });
    assert.equal(reset.status, 200, JSON.stringify(reset.body));
    const login = (password: string) =>
      server.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'em_carol' }, password } });
    assert.equal((await login('first-pw')).status, 403);
    assert.equal((await login('second-pw')).status, 200);
    // The address names the account at login too (m.id.thirdparty), whatever its case.
    const byEmail = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'Carol@Example.org' }, password: 'second-pw' },
    });
    assert.equal(byEmail.status, 200);
    assert.equal(byEmail.body.user_id, done.body.user_id);
    // The reset logged every device out.
    assert.equal((await server.request('GET', `${CLIENT}/account/whoami`, { token: done.body.access_token })).status, 401);
  });
});

describe('an SMTP server that cannot be reached', () => {
  it('requestToken answers 502 M_UNKNOWN and keeps nothing; the same request succeeds once the server is back', async () => {
    const port = await freePort();
    const down = await startTestServer({ config: { email: { smtp_host: '127.0.0.1', smtp_port: port, notif_from: 'Hearth <noreply@localhost>' } } });
    const later = new TestSmtp();
    try {
      const body = { client_secret: 'down-1', email: 'patient@example.org', send_attempt: 1 };
      const failed = await down.request('POST', `${CLIENT}/register/email/requestToken`, { body });
      assert.equal(failed.status, 502, JSON.stringify(failed.body));
      assert.equal(failed.body.errcode, 'M_UNKNOWN');
      // Not queued: nothing is sent when the server comes back, until the client asks again.
      await later.start(port);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(later.mails.length, 0);
      const retried = await down.request('POST', `${CLIENT}/register/email/requestToken`, { body });
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      tokenOf(await later.mailTo('patient@example.org', 0));
    } finally {
      await down.stop();
      await later.stop();
    }
  });
});

describe('without email configured', () => {
  it('the requestToken endpoints and /3pid/add say so; m.3pid_changes is off', async () => {
    const plain = await startTestServer();
    try {
      const u = await plain.registerUser('noemail');
      const add = await plain.request('POST', `${CLIENT}/account/3pid/add`, { token: u.accessToken, body: { sid: 's', client_secret: 'c' } });
      assert.equal(add.status, 400);
      assert.equal(add.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
      const reg = await plain.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'x', email: 'a@b.c', send_attempt: 1 } });
      assert.equal(reg.status, 403);
      assert.equal(reg.body.errcode, 'M_THREEPID_DENIED');
      const adding = await plain.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { body: { client_secret: 'x', email: 'a@b.c', send_attempt: 1 } });
      assert.equal(adding.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
      const reset = await plain.request('POST', `${CLIENT}/account/password`, { body: { new_password: 'x' } });
      assert.equal(reset.status, 401);
      assert.equal(reset.body.errcode, 'M_MISSING_TOKEN');
      const caps = await plain.request('GET', `${CLIENT}/capabilities`, { token: u.accessToken });
      assert.deepEqual(caps.body.capabilities['m.3pid_changes'], { enabled: false });
    } finally {
      await plain.stop();
    }
  });
});
