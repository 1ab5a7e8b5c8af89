import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, canonicalJsonWithout, CanonicalJsonError, compareCodePoints } from '../../src/core/canonical-json.js';

// Every example from the spec's appendices, "Canonical JSON": input as the JSON text given there.
const SPEC_EXAMPLES: [string, string][] = [
  ['{}', '{}'],
  ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
  ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
  ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
  [
    `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`,
    '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
  ],
  ['{\n    "a": "日本語"\n}', '{"a":"日本語"}'],
  ['{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'],
  ['{\n    "a": "\\u65E5"\n}', '{"a":"日"}'],
  ['{\n    "a": null\n}', '{"a":null}'],
  ['{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'],
];

test('spec examples: canonical JSON of each appendix example is exactly as given', () => {
  for (const [input, expected] of SPEC_EXAMPLES) {
    assert.equal(canonicalJson(JSON.parse(input)), expected, input);
  }
});

test('keys are sorted by Unicode code point, not UTF-16 code unit', () => {
  // U+FFFD sorts before U+1F600 by code point, after it by code unit.
  const obj = { '\u{1F600}': 1, '\uFFFD': 2, 'z': 3, '\uE000': 4 };
  assert.equal(canonicalJson(obj), '{"z":3,"\uE000":4,"\uFFFD":2,"\u{1F600}":1}');
  assert.ok(compareCodePoints('\uFFFF', '\u{10000}') < 0);
  assert.ok(compareCodePoints('\u{10000}', '\uFFFF') > 0);
  assert.ok(compareCodePoints('\u{1F600}', '\u{1F601}') < 0);
  assert.ok(compareCodePoints('a', 'ab') < 0);
  assert.equal(compareCodePoints('\u{1F600}', '\u{1F600}'), 0);
});

test('strings use the shortest escapes: short forms, lowercase \\u00XX for other controls, all else raw', () => {
  assert.equal(canonicalJson('\b\t\n\f\r"\\'), '"\\b\\t\\n\\f\\r\\"\\\\"');
  assert.equal(canonicalJson('\u0000\u0001\u000b\u000e\u001f'), '"\\u0000\\u0001\\u000b\\u000e\\u001f"');
  assert.equal(canonicalJson('/\u007f\u2028\u2029é\u{1F600}'), '"/\u007f\u2028\u2029é\u{1F600}"');
});

test('integers at the edges of [-(2^53)+1, 2^53-1] are allowed, beyond them rejected', () => {
  assert.equal(canonicalJson([2 ** 53 - 1, -(2 ** 53) + 1, 0, -1]), '[9007199254740991,-9007199254740991,0,-1]');
  assert.throws(() => canonicalJson(2 ** 53), CanonicalJsonError);
  assert.throws(() => canonicalJson(-(2 ** 53)), CanonicalJsonError);
  assert.throws(() => canonicalJson(1e300), CanonicalJsonError);
});

test('floats and non-finite numbers have no canonical form', () => {
  for (const n of [1.5, -0.1, NaN, Infinity, -Infinity]) {
    assert.throws(() => canonicalJson({ n }), CanonicalJsonError, String(n));
  }
});

test('negative zero is written as 0', () => {
  assert.equal(canonicalJson(-0), '0');
});

test('non-JSON values are rejected', () => {
  const bad: unknown[] = [
    undefined, () => 1, Symbol('x'), 1n, new Date(0), new Map(), new Uint8Array(1), [undefined], { a: [1, () => 1] },
  ];
  for (const v of bad) assert.throws(() => canonicalJson(v), CanonicalJsonError);
});

test('lone surrogates in strings or keys have no UTF-8 form and are rejected', () => {
  assert.throws(() => canonicalJson('\uD800'), CanonicalJsonError);
  assert.throws(() => canonicalJson('a\uDC00b'), CanonicalJsonError);
  assert.throws(() => canonicalJson({ '\uD83D': 1 }), CanonicalJsonError);
});

test('object members set to undefined are left out, as optional properties', () => {
  assert.equal(canonicalJson({ a: 1, b: undefined }), '{"a":1}');
});

test('objects without a prototype encode like plain objects', () => {
  const o = Object.create(null) as Record<string, unknown>;
  o['b'] = 1;
  o['a'] = [true, false, null];
  assert.equal(canonicalJson(o), '{"a":[true,false,null],"b":1}');
});

test('reference cycles raise CanonicalJsonError rather than overflowing the stack', () => {
  const o: Record<string, unknown> = {};
  o['self'] = o;
  assert.throws(() => canonicalJson(o), CanonicalJsonError);
});

test('canonicalJsonWithout leaves out the given top-level keys only', () => {
  const o = { signatures: { x: 1 }, unsigned: { age: 1 }, content: { signatures: 2 } };
  assert.equal(canonicalJsonWithout(o, new Set(['signatures', 'unsigned'])), '{"content":{"signatures":2}}');
});

test('output matches JSON.stringify with sorted keys for ordinary data', () => {
  const value = { z: [1, { y: 'é', x: null }], a: { c: true, b: -5 }, m: '' };
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
        : v;
  assert.equal(canonicalJson(value), JSON.stringify(sorted(value)));
});

test('large objects and keys needing escapes are still sorted by code point', () => {
  const keys = Array.from({ length: 300 }, (_, i) => `k${(i * 7919) % 1000}`);
  keys.push('\u{1F600}', '\uFFFD', 'a"b', '\n', 'Z', '');
  const obj = Object.fromEntries(keys.map((k, i) => [k, i]));
  const expectedOrder = [...keys].sort((a, b) => {
    const x = [...a].map((c) => c.codePointAt(0)!);
    const y = [...b].map((c) => c.codePointAt(0)!);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  });
  const out = canonicalJson(obj);
  assert.deepEqual(Object.keys(JSON.parse(out)).filter((k) => !/^\d+$/.test(k)), expectedOrder.filter((k) => !/^\d+$/.test(k)));
  let pos = -1;
  for (const k of expectedOrder) {
    const at = out.indexOf(JSON.stringify(k) + ':', pos + 1);
    assert.ok(at > pos, k);
    pos = at;
  }
  assert.equal(canonicalJson({ 'a"b': 1, '\n': 2 }), '{"\\n":2,"a\\"b":1}');
});
