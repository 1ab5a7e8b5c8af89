/**
 * Glob matching for push rules (`event_match` patterns, content rules, the
 * display name condition). It never backtracks across `*`: a pattern is split
 * at its stars into segments of literal characters and `?`, and the segments
 * are searched left to right (the leftmost match of each segment is always the
 * right one), so the cost is O(value length x pattern length) whatever the
 * pattern. Compiled matchers live in small bounded caches.
 */
import { BoundedCache } from './small-cache.js';

/**
 * Case-insensitive glob match (`*` any run of characters, `?` exactly one
 * character; everything else literal).
 *
 * `wordBoundary` false: the pattern must match the whole value.
 * `wordBoundary` true (`content.body`, content rules): the pattern must match
 * some substring that starts and ends at a word boundary, i.e. is preceded by
 * the start of the value or a character outside `[A-Za-z0-9_]`, and followed
 * by the end of the value or such a character.
 *
 * Case-insensitivity is that of ECMAScript's non-Unicode `i` flag (per UTF-16
 * unit upper-casing; ASCII letters never match non-ASCII ones).
 */
export function globMatch(pattern: string, value: string, wordBoundary: boolean): boolean {
  if (!wordBoundary && pattern.indexOf('*') === -1 && pattern.indexOf('?') === -1) {
    return literalEqualsIgnoreCase(value, pattern);
  }
  return globMatcher(pattern, wordBoundary).test(value);
}

/** The (cached) compiled matcher for a glob. */
export function globMatcher(pattern: string, wordBoundary: boolean): Matcher {
  const cache = wordBoundary ? wordGlobCache : wholeGlobCache;
  let m = cache.get(pattern);
  if (m === undefined) {
    m = compileGlob(pattern, wordBoundary);
    cache.set(pattern, m);
  }
  return m;
}

export interface Matcher {
  test(value: string): boolean;
}

const wholeGlobCache = new BoundedCache<Matcher>(1024);
const wordGlobCache = new BoundedCache<Matcher>(1024);
const displayNameCache = new BoundedCache<Matcher>(1024);

const NOT_WORD_BEFORE = '(?<![A-Za-z0-9_])';
const NOT_WORD_AFTER = '(?![A-Za-z0-9_])';
/**
 * `?`: one code point: a surrogate pair, a lone surrogate or any other unit,
 * never half of a pair.
 */
const ANY_CHAR =
  '(?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]|[^\\uD800-\\uDFFF])';

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Regex source for a star-free glob segment. */
function segmentSource(seg: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < seg.length; i++) {
    if (seg.charCodeAt(i) === 0x3f /* ? */) {
      out += escapeLiteral(seg.slice(start, i)) + ANY_CHAR;
      start = i + 1;
    }
  }
  return out + escapeLiteral(seg.slice(start));
}

class SingleRegex implements Matcher {
  constructor(private readonly re: RegExp) {}
  test(value: string): boolean {
    return this.re.test(value);
  }
}

/**
 * `first*mid1*...*last`: `first` anchored (whole value) or at the leftmost
 * word-boundary start, each middle segment at its leftmost occurrence after
 * the previous one, `last` at the end of the value (whole value) or at its
 * leftmost occurrence ending at a word boundary. Empty `first`/`last` (leading
 * or trailing star) are null.
 */
class StarGlob implements Matcher {
  constructor(
    private readonly first: RegExp | null,
    private readonly middle: readonly RegExp[],
    private readonly last: RegExp | null,
  ) {}
  test(value: string): boolean {
    let pos = 0;
    const first = this.first;
    if (first !== null) {
      first.lastIndex = 0;
      if (!first.test(value)) return false;
      pos = first.lastIndex;
    }
    const middle = this.middle;
    for (let i = 0; i < middle.length; i++) {
      const re = middle[i]!;
      re.lastIndex = pos;
      if (!re.test(value)) return false;
      pos = re.lastIndex;
    }
    const last = this.last;
    if (last === null) return true;
    last.lastIndex = pos;
    return last.test(value);
  }
}

function compileGlob(pattern: string, wordBoundary: boolean): Matcher {
  const parts = pattern.split('*');
  if (parts.length === 1) {
    const src = segmentSource(pattern);
    return new SingleRegex(
      wordBoundary ? new RegExp(NOT_WORD_BEFORE + src + NOT_WORD_AFTER, 'i') : new RegExp('^(?:' + src + ')$', 'i'),
    );
  }
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  const middle: RegExp[] = [];
  for (let i = 1; i < parts.length - 1; i++) {
    // Consecutive stars leave empty segments, which match anywhere.
    if (parts[i] !== '') middle.push(new RegExp(segmentSource(parts[i]!), 'gi'));
  }
  let first: RegExp | null = null;
  if (head !== '') {
    first = wordBoundary
      ? new RegExp(NOT_WORD_BEFORE + '(?:' + segmentSource(head) + ')', 'gi')
      : new RegExp(segmentSource(head), 'yi');
  }
  let last: RegExp | null = null;
  if (tail !== '') {
    last = new RegExp('(?:' + segmentSource(tail) + ')' + (wordBoundary ? NOT_WORD_AFTER : '$'), 'gi');
  }
  return new StarGlob(first, middle, last);
}

/** Whether `body` contains `literal` (no wildcards) between word boundaries, ignoring case. */
export function literalWordMatch(literal: string, body: string): boolean {
  let m = displayNameCache.get(literal);
  if (m === undefined) {
    m = new SingleRegex(new RegExp(NOT_WORD_BEFORE + '(?:' + escapeLiteral(literal) + ')' + NOT_WORD_AFTER, 'i'));
    displayNameCache.set(literal, m);
  }
  return m.test(body);
}

/** The non-Unicode `i` flag's Canonicalize: upper-case one unit, never mapping non-ASCII to ASCII. */
function canonicalize(c: number): number {
  const u = String.fromCharCode(c).toUpperCase();
  if (u.length !== 1) return c;
  const cu = u.charCodeAt(0);
  return c >= 128 && cu < 128 ? c : cu;
}

export function literalEqualsIgnoreCase(value: string, literal: string): boolean {
  if (value === literal) return true;
  const n = value.length;
  if (n !== literal.length) return false;
  for (let i = 0; i < n; i++) {
    const a = value.charCodeAt(i);
    const b = literal.charCodeAt(i);
    if (a === b) continue;
    if (a < 128 && b < 128) {
      const la = a | 0x20;
      if (la !== (b | 0x20) || la < 0x61 || la > 0x7a) return false;
      continue;
    }
    if (canonicalize(a) !== canonicalize(b)) return false;
  }
  return true;
}
