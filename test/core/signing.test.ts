import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64 } from '../../src/core/base64.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import {
  decodeSigningKeyFile, decodeSigningKeys, encodeSigningKeyFile, generateSigningKey, publicKeyBase64,
  signingKeyFromSeed, signJson, SigningKeyError, verifyJsonSignature,
} from '../../src/core/signing.js';

// Spec appendices, "Cryptographic Test Vectors".
const SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
const KEY = signingKeyFromSeed('ed25519:1', SEED);

test('test vector: the signing key seed decodes to 32 bytes and yields a 32-byte public key', () => {
  assert.equal(SEED.length, 32);
  assert.equal(KEY.publicKey.length, 32);
  assert.equal(KEY.keyId, 'ed25519:1');
  assert.equal(decodeBase64(publicKeyBase64(KEY)).length, 32);
});

test('test vector: signing the empty object gives the spec signature, byte for byte', () => {
  const signed = signJson({}, 'domain', KEY);
  const expected = {
    signatures: {
      domain: {
        'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
      },
    },
  };
  assert.deepEqual(signed, expected);
  assert.equal(canonicalJson(signed), canonicalJson(expected));
});

test('test vector: signing {"one":1,"two":"Two"} gives the spec signature, byte for byte', () => {
  const signed = signJson({ one: 1, two: 'Two' }, 'domain', KEY);
  const expected = {
    one: 1,
    signatures: {
      domain: {
        'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
      },
    },
    two: 'Two',
  };
  assert.deepEqual(signed, expected);
  assert.equal(canonicalJson(signed), canonicalJson(expected));
});

test('signing ignores unsigned and existing signatures, and keeps both in the result', () => {
  const input = {
    one: 1,
    two: 'Two',
    unsigned: { age_ts: 5 },
    signatures: { other: { 'ed25519:x': 'abc' }, domain: { 'ed25519:0': 'old' } },
  };
  const signed = signJson(input, 'domain', KEY);
  assert.equal(signed.signatures.domain['ed25519:1'], signJson({ one: 1, two: 'Two' }, 'domain', KEY).signatures.domain['ed25519:1']);
  assert.equal(signed.signatures.domain['ed25519:0'], 'old');
  assert.equal(signed.signatures.other['ed25519:x'], 'abc');
  assert.deepEqual(signed.unsigned, { age_ts: 5 });
});

test('signing returns a copy and leaves the input untouched', () => {
  const input = { a: 1, signatures: { domain: { 'ed25519:0': 'old' } } };
  const before = structuredClone(input);
  const signed = signJson(input, 'domain', KEY);
  assert.deepEqual(input, before);
  assert.notEqual(signed, input);
});

test('checking a signature: the spec vectors verify against the public key', () => {
  assert.ok(verifyJsonSignature(signJson({}, 'domain', KEY), 'domain', 'ed25519:1', KEY.publicKey));
  const signed = signJson({ one: 1, two: 'Two' }, 'domain', KEY);
  assert.ok(verifyJsonSignature(signed, 'domain', 'ed25519:1', KEY.publicKey));
  assert.ok(verifyJsonSignature({ ...signed, unsigned: { added: 'later' } }, 'domain', 'ed25519:1', KEY.publicKey));
});

test('checking a signature fails on altered data, wrong key, missing entry, unknown algorithm, bad base64', () => {
  const signed = signJson({ one: 1, two: 'Two' }, 'domain', KEY);
  const other = generateSigningKey('2');
  assert.ok(!verifyJsonSignature({ ...signed, one: 2 }, 'domain', 'ed25519:1', KEY.publicKey));
  assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:1', other.publicKey));
  assert.ok(!verifyJsonSignature(signed, 'elsewhere', 'ed25519:1', KEY.publicKey));
  assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:2', KEY.publicKey));
  const renamed = { one: 1, two: 'Two', signatures: { domain: { 'curve25519:1': signed.signatures.domain['ed25519:1'] } } };
  assert.ok(!verifyJsonSignature(renamed, 'domain', 'curve25519:1', KEY.publicKey));
  const garbled = { one: 1, two: 'Two', signatures: { domain: { 'ed25519:1': '!!!' } } };
  assert.ok(!verifyJsonSignature(garbled, 'domain', 'ed25519:1', KEY.publicKey));
  assert.ok(!verifyJsonSignature({ x: 1.5, signatures: signed.signatures }, 'domain', 'ed25519:1', KEY.publicKey));
  assert.ok(!verifyJsonSignature(signed, 'domain', 'ed25519:1', new Uint8Array(31)));
});

test('a generated key signs and verifies, with a valid default key version', () => {
  const key = generateSigningKey();
  assert.match(key.keyId, /^ed25519:a_[A-Za-z]{4}$/);
  assert.equal(key.seed.length, 32);
  const signed = signJson({ hello: 'world' }, 'example.org', key);
  assert.ok(verifyJsonSignature(signed, 'example.org', key.keyId, key.publicKey));
  assert.notDeepEqual(generateSigningKey().seed, key.seed);
});

test('key ids must be ed25519:<[A-Za-z0-9_]+> and seeds 32 bytes', () => {
  assert.throws(() => signingKeyFromSeed('ed25519:', SEED), SigningKeyError);
  assert.throws(() => signingKeyFromSeed('ed25519:a-b', SEED), SigningKeyError);
  assert.throws(() => signingKeyFromSeed('rsa:1', SEED), SigningKeyError);
  assert.throws(() => signingKeyFromSeed('ed25519:1', SEED.subarray(1)), SigningKeyError);
});

test('the same seed always gives the same public key', () => {
  assert.deepEqual(signingKeyFromSeed('ed25519:other', SEED).publicKey, KEY.publicKey);
});

test('signing key file: Synapse\'s "ed25519 <version> <unpadded base64 seed>" line round-trips', () => {
  const text = encodeSigningKeyFile(KEY);
  // The spec's seed ends in '1', which sets unused trailing bits; the canonical encoding ends in '0'.
  assert.equal(text, 'ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n');
  assert.deepEqual(decodeSigningKeyFile('ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1').seed, KEY.seed);
  const back = decodeSigningKeyFile(text);
  assert.equal(back.keyId, 'ed25519:1');
  assert.deepEqual(back.seed, KEY.seed);
  assert.deepEqual(back.publicKey, KEY.publicKey);
});

test('signing key file: the first of several lines is the signing key; malformed files are rejected', () => {
  const other = generateSigningKey('a_old');
  const both = encodeSigningKeyFile(KEY) + '\n' + encodeSigningKeyFile(other);
  assert.equal(decodeSigningKeyFile(both).keyId, 'ed25519:1');
  assert.deepEqual(decodeSigningKeys(both).map((k) => k.keyId), ['ed25519:1', 'ed25519:a_old']);
  for (const bad of ['', '\n', 'ed25519 1', 'ed448 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1', 'ed25519 1 !!!!', 'ed25519 1 YJDB']) {
    assert.throws(() => decodeSigningKeyFile(bad), SigningKeyError, JSON.stringify(bad));
  }
});
