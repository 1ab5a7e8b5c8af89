/**
 * Canonical JSON (spec: appendices, "Canonical JSON"): the byte form that is
 * hashed and signed, so every server must produce exactly the same string.
 */

export class CanonicalJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

/**
 * Deep enough for any real event, shallow enough to turn a reference cycle
 * into a clean error rather than a stack overflow.
 */
const MAX_DEPTH = 512;

/** Characters that need an escape, or a check for lone surrogates. */
const NEEDS_CARE = /[\u0000-\u001F"\\\uD800-\uDFFF]/;
/**
 * As NEEDS_CARE, plus U+E000..U+FFFF: from the first surrogate up is the only
 * range where UTF-16 order and code point order disagree.
 */
const KEY_NEEDS_CARE = /[\u0000-\u001F"\\\uD800-\uFFFF]/;
/** Below this many keys an insertion sort beats Array.prototype.sort several times over. */
const INSERTION_SORT_MAX = 24;

/**
 * Encodes `value` as canonical JSON. Object members whose value is
 * `undefined` are skipped (as with optional TypeScript properties); anything
 * else that has no canonical form (floats, -0 excepted, integers outside
 * [-(2^53)+1, 2^53-1], NaN, bigint, lone surrogates, non-plain objects, ...)
 * throws a CanonicalJsonError.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

/**
 * Canonical JSON of a plain object without some of its top-level keys. Hashing
 * and signing drop `signatures`/`unsigned`/`hashes`; this avoids copying the
 * event just to leave them out.
 */
export function canonicalJsonWithout(obj: object, omit: ReadonlySet<string>): string {
  if (!isPlainObject(obj)) throw new CanonicalJsonError('expected a plain object');
  return encodeObject(obj as Record<string, unknown>, 0, omit);
}

function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      return encodeNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) throw new CanonicalJsonError('value is nested too deeply');
      if (Array.isArray(value)) return encodeArray(value, depth + 1);
      if (!isPlainObject(value)) throw new CanonicalJsonError('only plain objects can be encoded');
      return encodeObject(value as Record<string, unknown>, depth + 1, undefined);
    default:
      throw new CanonicalJsonError(`a ${typeof value} cannot be encoded`);
  }
}

function encodeString(s: string): string {
  // Most strings need no escape at all: skip JSON.stringify and the surrogate check.
  if (!NEEDS_CARE.test(s)) return '"' + s + '"';
  // A lone surrogate has no UTF-8 encoding, so there is no canonical form for it.
  if (!isWellFormed(s)) throw new CanonicalJsonError('string contains a lone surrogate');
  // JSON.stringify already emits the shortest escapes the grammar asks for:
  // \b \t \n \f \r \" \\, lowercase \u00XX for other controls, everything else raw.
  return JSON.stringify(s);
}

/** String.prototype.isWellFormed exists in Node 20 but not in the ES2023 lib typings. */
function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function encodeNumber(n: number): string {
  if (!Number.isSafeInteger(n)) {
    throw new CanonicalJsonError(
      Number.isInteger(n) ? `integer ${n} is out of range` : `${n} is not an integer`,
    );
  }
  // String(-0) is "0", which is what the spec wants.
  return String(n);
}

function encodeArray(arr: readonly unknown[], depth: number): string {
  let out = '[';
  for (let i = 0; i < arr.length; i++) {
    if (i > 0) out += ',';
    // `undefined` in an array cannot be skipped without shifting indices.
    out += encode(arr[i], depth);
  }
  return out + ']';
}

function encodeObject(
  obj: Record<string, unknown>,
  depth: number,
  omit: ReadonlySet<string> | undefined,
): string {
  const keys = Object.keys(obj);
  let plainKeys = true;
  for (const k of keys) {
    if (KEY_NEEDS_CARE.test(k)) {
      plainKeys = false;
      break;
    }
  }
  if (plainKeys) sortUtf16(keys);
  else keys.sort(compareCodePoints);
  let out = '{';
  let first = true;
  for (const key of keys) {
    if (omit !== undefined && omit.has(key)) continue;
    const v = obj[key];
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += plainKeys ? '"' + key + '":' : encodeString(key) + ':';
    out += encode(v, depth);
  }
  return out + '}';
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sorts in place by UTF-16 code unit, which equals code point order for keys without high units. */
function sortUtf16(keys: string[]): void {
  if (keys.length > INSERTION_SORT_MAX) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

/**
 * Orders strings by Unicode code point. Default JS ordering compares UTF-16
 * code units, which puts astral characters (surrogate pairs) before
 * U+E000..U+FFFF; lifting surrogates above that range fixes it.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}
