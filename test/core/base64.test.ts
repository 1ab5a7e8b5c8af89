import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Base64Error, decodeBase64, encodeUnpaddedBase64, encodeUnpaddedBase64Url } from '../../src/core/base64.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

test('spec examples: UNPADDED_BASE64 of "", f, fo, foo, foob, fooba, foobar', () => {
  const cases: [string, string][] = [
    ['', ''], ['f', 'Zg'], ['fo', 'Zm8'], ['foo', 'Zm9v'], ['foob', 'Zm9vYg'], ['fooba', 'Zm9vYmE'], ['foobar', 'Zm9vYmFy'],
  ];
  for (const [input, expected] of cases) {
    assert.equal(encodeUnpaddedBase64(utf8(input)), expected);
    assert.deepEqual(decodeBase64(expected), utf8(input));
  }
});

test('URL-safe alphabet uses - and _ for values 62 and 63', () => {
  const bytes = new Uint8Array([0xfb, 0xff, 0xbf]);
  assert.equal(encodeUnpaddedBase64(bytes), '+/+/');
  assert.equal(encodeUnpaddedBase64Url(bytes), '-_-_');
  assert.equal(encodeUnpaddedBase64Url(new Uint8Array([0xff])), '_w');
});

test('encoding works on views into larger buffers', () => {
  const big = utf8('xxfooxx');
  assert.equal(encodeUnpaddedBase64(big.subarray(2, 5)), 'Zm9v');
  assert.equal(encodeUnpaddedBase64Url(big.subarray(2, 5)), 'Zm9v');
});

test('decoding accepts padded and unpadded, standard and URL-safe input', () => {
  assert.deepEqual(decodeBase64('Zg=='), utf8('f'));
  assert.deepEqual(decodeBase64('Zm8='), utf8('fo'));
  assert.deepEqual(decodeBase64('Zm8'), utf8('fo'));
  assert.deepEqual(decodeBase64('-_-_'), new Uint8Array([0xfb, 0xff, 0xbf]));
  assert.deepEqual(decodeBase64('+/+/'), new Uint8Array([0xfb, 0xff, 0xbf]));
});

test('decoding returns a plain Uint8Array', () => {
  assert.equal(Object.getPrototypeOf(decodeBase64('Zm9v')), Uint8Array.prototype);
});

test('decoding rejects invalid characters, mixed alphabets, bad padding and impossible lengths', () => {
  for (const bad of ['Z', 'Zg=', 'Zm9v=', 'Zg===', '=', '==', 'Zm 9v', 'Zm9v\n', '+-', '@@@@', 'Zg=a', 'Zm9vY']) {
    assert.throws(() => decodeBase64(bad), Base64Error, JSON.stringify(bad));
  }
});

test('decoding tolerates non-zero unused trailing bits, as the spec\'s own test seed has them', () => {
  assert.deepEqual(decodeBase64('Zh'), decodeBase64('Zg'));
  assert.equal(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1').length, 32);
});

test('encode then decode round-trips every length', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
    assert.deepEqual(decodeBase64(encodeUnpaddedBase64(bytes)), bytes);
    assert.deepEqual(decodeBase64(encodeUnpaddedBase64Url(bytes)), bytes);
    assert.ok(!encodeUnpaddedBase64(bytes).includes('='));
  }
});
