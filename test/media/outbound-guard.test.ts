/** The outbound address classification (src/http/outbound-guard.ts), on its own. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOutboundGuard, isCidrList, OutboundRefused, refusalReason, parseCidrs } from '../../src/http/outbound-guard.js';

describe('outbound guard', () => {
  it('refuses every non-public range, IPv4-mapped forms included', () => {
    for (const ip of [
      '127.0.0.1', '127.255.0.9', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
      '100.64.0.1', '100.127.255.254', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255',
      '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a00:1', '2002:a00:1::1',
    ]) {
      assert.ok(refusalReason(ip), `${ip} is refused`);
    }
  });

  it('lets public addresses through', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(refusalReason(ip), undefined, ip);
    }
  });

  it('an allow-list opens exactly its CIDRs, for mapped forms too', () => {
    const allow = parseCidrs(['127.0.0.0/8', 'fd00::/8']);
    assert.equal(refusalReason('127.0.0.1', allow), undefined);
    assert.equal(refusalReason('::ffff:127.0.0.1', allow), undefined);
    assert.equal(refusalReason('fd00::5', allow), undefined);
    assert.ok(refusalReason('10.0.0.1', allow));
    assert.ok(refusalReason('::1', allow));
    assert.ok(isCidrList(['10.0.0.0/8', '::1']));
    assert.ok(!isCidrList(['10.0.0.0/33']));
    assert.ok(!isCidrList(['example.org']));
  });

  it('the socket lookup refuses a name that resolves to a refused address', async () => {
    const guard = createOutboundGuard();
    const err = await new Promise<unknown>((resolve) => guard.lookup('localhost', { all: true }, (e) => resolve(e)));
    assert.ok(err instanceof OutboundRefused, String(err));
    const open = createOutboundGuard(['127.0.0.0/8', '::1/128']);
    const ok = await new Promise<unknown>((resolve) => open.lookup('localhost', { all: true }, (e, a) => resolve(e ?? a)));
    assert.ok(Array.isArray(ok) && ok.length > 0, `resolved: ${JSON.stringify(ok)}`);
    assert.throws(() => guard.check('192.168.0.1'), OutboundRefused);
  });
});
