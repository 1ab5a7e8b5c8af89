import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isValidEventId, isValidLocalpart, isValidRoomAlias, isValidRoomId, isValidServerName, isValidUserId,
  localpartOf, parseServerName, serverNameOf,
} from '../../src/core/ids.js';
import { getRoomVersion, type RoomVersion } from '../../src/core/room-versions.js';

const V = (id: string): RoomVersion => getRoomVersion(id)!;
const HASH_STD = 'Rqnc+F/dvnEYJTyHq/iKxU2bZ1CI92+kuZq3a5lr5Zg';
const HASH_URL = 'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
const HASH_PLAIN = 'Rqnc0F0dvnEYJTyHq0iKxU2bZ1CI920kuZq3a5lr5Zg';

test('server name: the spec examples are valid', () => {
  for (const name of ['matrix.org', 'matrix.org:8888', '1.2.3.4', '1.2.3.4:1234', '[1234:5678::abcd]', '[1234:5678::abcd]:5678']) {
    assert.ok(isValidServerName(name), name);
  }
});

test('server name: hostname with optional port, IPv4 and IPv6 literals parsed', () => {
  assert.deepEqual(parseServerName('matrix.org'), { host: 'matrix.org', kind: 'dns' });
  assert.deepEqual(parseServerName('matrix.org:8448'), { host: 'matrix.org', kind: 'dns', port: 8448 });
  assert.deepEqual(parseServerName('1.2.3.4:1234'), { host: '1.2.3.4', kind: 'ipv4', port: 1234 });
  assert.deepEqual(parseServerName('[1234:5678::abcd]:5678'), { host: '1234:5678::abcd', kind: 'ipv6', port: 5678 });
  assert.deepEqual(parseServerName('[::ffff:1.2.3.4]'), { host: '::ffff:1.2.3.4', kind: 'ipv6' });
  assert.deepEqual(parseServerName('localhost'), { host: 'localhost', kind: 'dns' });
});

test('server name: IPv6 literals follow RFC 3513 text forms', () => {
  for (const ok of ['[::]', '[::1]', '[1:2:3:4:5:6:7:8]', '[1::8]', '[fe80::1:2]', '[1:2:3:4:5:6:1.2.3.4]', '[::1.2.3.4]', '[ABCD::ef]']) {
    assert.ok(isValidServerName(ok), ok);
  }
  for (const bad of ['[1:2:3:4:5:6:7:8:9]', '[1::2::3]', '[12345::1]', '[:1]', '[1:2:3:4:5:6:7]', '[::1.2.3]', '[g::1]', '[1:2:3:4:5:6:7:1.2.3.4]', '[]', '[:::]']) {
    assert.ok(!isValidServerName(bad), bad);
  }
});

test('server name: malformed hosts and ports are rejected', () => {
  for (const bad of [
    '', ':80', 'matrix.org:', 'matrix.org:123456', 'matrix.org:65536', 'matrix.org:8a', 'matrix_org', 'exa mple.com',
    '[1234:5678::abcd', '[::1]x', '[::1]:', '1.2.3.256', '1.2.3', 'a'.repeat(256), 'ma\u00e9trix.org', 'a:b:c',
  ]) {
    assert.ok(!isValidServerName(bad), JSON.stringify(bad));
  }
  assert.ok(isValidServerName('a'.repeat(255)));
  assert.ok(isValidServerName('matrix.org:65535'));
});

test('server name: case is preserved, not folded', () => {
  assert.equal(parseServerName('MATRIX.org')?.host, 'MATRIX.org');
});

test('user id: @localpart:server with the strict localpart grammar', () => {
  assert.ok(isValidUserId('@alice:example.org'));
  assert.ok(isValidUserId('@a.b_c=d-e/f+g9:matrix.org:8448'));
  assert.ok(isValidUserId('@bob:[::1]:8448'));
  for (const bad of ['alice:example.org', '@alice', '@:example.org', '@Alice:example.org', '@al ice:example.org', '@alice:', '@alice:bad_server', '@a*b:example.org']) {
    assert.ok(!isValidUserId(bad), bad);
  }
});

test('user id: historical localparts allow any code point but ":" and NUL, including empty', () => {
  for (const id of ['@Alice:example.org', '@:example.org', '@日本:example.org', '@a b\u0001:example.org', '@\u{1F600}:example.org']) {
    assert.ok(isValidUserId(id, { historical: true }), id);
  }
  for (const bad of ['@a\u0000b:example.org', '@a\uD800:example.org', '@a:bad_server']) {
    assert.ok(!isValidUserId(bad, { historical: true }), bad);
  }
});

test('user id: at most 255 bytes of UTF-8, sigil and domain included', () => {
  const server = 'example.org';
  const fill = (n: number): string => `@${'a'.repeat(n - 2 - server.length)}:${server}`;
  assert.ok(isValidUserId(fill(255)));
  assert.ok(!isValidUserId(fill(256)));
  // 'é' is two bytes: 127 of them plus "@:" and the domain exceed 255 bytes though only 141 code units.
  assert.ok(!isValidUserId(`@${'é'.repeat(127)}:${server}`, { historical: true }));
  assert.ok(isValidUserId(`@${'é'.repeat(121)}:${server}`, { historical: true }));
});

test('localpart: strict grammar for new registrations', () => {
  assert.ok(isValidLocalpart('alice'));
  assert.ok(isValidLocalpart('a.b_c=d-e/f+g0'));
  for (const bad of ['', 'Alice', 'a b', 'a:b', 'ä', 'a#b', 'a*']) assert.ok(!isValidLocalpart(bad), bad);
  assert.ok(isValidLocalpart('a'.repeat(242), 'example.org'));
  assert.ok(!isValidLocalpart('a'.repeat(243), 'example.org'));
});

test('room id: !opaque:server for v1-v11, ! + url-safe reference hash for v12', () => {
  assert.ok(isValidRoomId('!abc123:example.org'));
  assert.ok(isValidRoomId(`!${HASH_URL}`));
  assert.ok(isValidRoomId('!abc:example.org', V('11')));
  assert.ok(!isValidRoomId(`!${HASH_URL}`, V('11')));
  assert.ok(isValidRoomId(`!${HASH_URL}`, V('12')));
  assert.ok(!isValidRoomId('!abc:example.org', V('12')));
  for (const bad of ['!:example.org', '!abc', 'abc:example.org', `!${HASH_STD}`, `!${HASH_URL}x`, `!${HASH_URL.slice(1)}`, '!a\u0000:example.org', '!abc:bad_server']) {
    assert.ok(!isValidRoomId(bad), bad);
  }
});

test('room id: a 43-character hash must end in a character with two zero low bits', () => {
  assert.ok(isValidRoomId(`!${HASH_PLAIN}`));
  assert.ok(!isValidRoomId(`!${HASH_PLAIN.slice(0, 42)}h`));
});

test('room id: at most 255 bytes', () => {
  assert.ok(isValidRoomId(`!${'a'.repeat(255 - 13)}:example.org`));
  assert.ok(!isValidRoomId(`!${'a'.repeat(256 - 13)}:example.org`));
});

test('event id: $opaque:server in v1/v2, standard base64 hash in v3, url-safe hash from v4', () => {
  assert.ok(isValidEventId('$abc:example.org', V('1')));
  assert.ok(isValidEventId('$abc:example.org', V('2')));
  assert.ok(!isValidEventId(`$${HASH_STD}`, V('1')));
  assert.ok(isValidEventId(`$${HASH_STD}`, V('3')));
  assert.ok(!isValidEventId(`$${HASH_URL}`, V('3')));
  assert.ok(isValidEventId(`$${HASH_URL}`, V('4')));
  assert.ok(isValidEventId(`$${HASH_URL}`, V('12')));
  assert.ok(!isValidEventId(`$${HASH_STD}`, V('4')));
  assert.ok(!isValidEventId('$abc:example.org', V('4')));
  for (const id of ['$abc:example.org', `$${HASH_STD}`, `$${HASH_URL}`]) assert.ok(isValidEventId(id), id);
  for (const bad of ['abc:example.org', '$abc', '$', `$${HASH_URL}=`, `!${HASH_URL}`]) assert.ok(!isValidEventId(bad), bad);
  assert.ok(!isValidEventId(`$${'a'.repeat(256 - 13)}:example.org`));
});

test('room alias: #localpart:server, any code point but ":" and NUL, at most 255 bytes', () => {
  assert.ok(isValidRoomAlias('#room:example.org'));
  assert.ok(isValidRoomAlias('#Café Room:example.org:8448'));
  for (const bad of ['room:example.org', '#room', '#:example.org', '#a\u0000:example.org', '#room:bad_server']) {
    assert.ok(!isValidRoomAlias(bad), bad);
  }
  assert.ok(isValidRoomAlias(`#${'a'.repeat(255 - 13)}:example.org`));
  assert.ok(!isValidRoomAlias(`#${'a'.repeat(256 - 13)}:example.org`));
});

test('serverNameOf: the part after the first colon; none for hash-based ids', () => {
  assert.equal(serverNameOf('@alice:example.org'), 'example.org');
  assert.equal(serverNameOf('@alice:example.org:8448'), 'example.org:8448');
  assert.equal(serverNameOf('@alice:[::1]:8448'), '[::1]:8448');
  assert.equal(serverNameOf('!abc:example.org'), 'example.org');
  assert.equal(serverNameOf('#room:example.org'), 'example.org');
  assert.equal(serverNameOf('$abc:example.org'), 'example.org');
  assert.equal(serverNameOf(`!${HASH_URL}`), undefined);
  assert.equal(serverNameOf(`$${HASH_URL}`), undefined);
});

test('localpartOf: between the sigil and the first colon', () => {
  assert.equal(localpartOf('@alice:example.org:8448'), 'alice');
  assert.equal(localpartOf('@:example.org'), '');
  assert.equal(localpartOf('alice:example.org'), undefined);
  assert.equal(localpartOf('@alice'), undefined);
});
