/**
 * The `multipart/mixed` bodies of federation media (server-server content_repository.yaml):
 * exactly two parts, JSON metadata first, then the media bytes or a `Location` to fetch them
 * from. Both directions stream: the media part is never held whole in memory, and only the
 * small head (preamble, metadata part, media part headers) is buffered, up to 64 KiB.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const CRLF = '\r\n';
const MAX_HEAD_BYTES = 64 * 1024;

export class MultipartError extends Error {}

/** A fresh boundary: random, so it cannot occur in the metadata and is vanishingly unlikely in the bytes. */
export function newBoundary(): string {
  return `hearth${randomBytes(16).toString('hex')}`;
}

/** The two-part body: `{}` metadata, then `content` under `headers` (Content-Type, Content-Disposition or Location). */
export function encodeMultipart(boundary: string, metadata: object, headers: Record<string, string>, content?: Readable): Readable {
  const head =
    `--${boundary}${CRLF}Content-Type: application/json${CRLF}${CRLF}${JSON.stringify(metadata)}${CRLF}` +
    `--${boundary}${CRLF}${Object.entries(headers).map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}`;
  const tail = `${CRLF}--${boundary}--${CRLF}`;
  return Readable.from(
    (async function* () {
      yield Buffer.from(head);
      if (content) for await (const chunk of content) yield chunk as Buffer;
      yield Buffer.from(tail);
    })(),
    { objectMode: false },
  );
}

/** The `boundary` parameter of a `multipart/mixed` Content-Type; undefined when it is not one. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/mixed\s*(;|$)/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

export interface DecodedMultipart {
  metadata: unknown;
  /** The media part's headers, names lowercased. */
  headers: Record<string, string>;
  /** The media part's bytes, ending where the closing delimiter starts. */
  body: Readable;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split(CRLF)) {
    if (line === '') continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new MultipartError('Malformed part header');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

/** Reads the head of a two-part body from `source`; the media part streams on from there. */
export async function decodeMultipart(source: AsyncIterable<Buffer>, boundary: string): Promise<DecodedMultipart> {
  const it = source[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  const more = async (): Promise<void> => {
    if (buf.length > MAX_HEAD_BYTES) throw new MultipartError('The multipart head is too large');
    const next = await it.next();
    if (next.done) throw new MultipartError('The multipart body ended early');
    buf = Buffer.concat([buf, next.value]);
  };
  /** Waits until `needle` is in the buffer at or after `from`; its offset. */
  const find = async (needle: string, from: number): Promise<number> => {
    for (;;) {
      const at = buf.indexOf(needle, from);
      if (at >= 0) return at;
      await more();
    }
  };
  const dash = `--${boundary}`;
  // The first delimiter opens the body or follows a preamble line.
  let at = buf.indexOf(dash);
  while (at < 0 || (at > 0 && buf.subarray(at - 2, at).toString() !== CRLF)) {
    await more();
    at = buf.indexOf(dash);
  }
  let pos = (await find(CRLF, at)) + 2;
  const metaHeadEnd = await find(CRLF + CRLF, pos - 2);
  const metaHeaders = parseHeaders(buf.subarray(pos, metaHeadEnd).toString('utf8'));
  pos = metaHeadEnd + 4;
  const metaEnd = await find(CRLF + dash, pos);
  let metadata: unknown = {};
  if (!/^application\/json/i.test(metaHeaders['content-type'] ?? 'application/json')) throw new MultipartError('The first part is not JSON');
  const metaText = buf.subarray(pos, metaEnd).toString('utf8').trim();
  try {
    metadata = metaText === '' ? {} : JSON.parse(metaText);
  } catch {
    throw new MultipartError('The metadata part is not valid JSON');
  }
  pos = (await find(CRLF, metaEnd + 2 + dash.length)) + 2;
  if (buf.subarray(metaEnd + 2 + dash.length, metaEnd + 4 + dash.length).toString() === '--') throw new MultipartError('The media part is missing');
  const mediaHeadEnd = await find(CRLF + CRLF, pos - 2);
  const headers = mediaHeadEnd < pos ? {} : parseHeaders(buf.subarray(pos, mediaHeadEnd).toString('utf8'));
  const rest = buf.subarray(mediaHeadEnd + 4);
  return { metadata, headers, body: Readable.from(untilDelimiter(rest, it, Buffer.from(CRLF + dash)), { objectMode: false }) };
}

/** Yields the bytes before `delim`, holding back a possible partial delimiter at each chunk's end. */
async function* untilDelimiter(first: Buffer, it: AsyncIterator<Buffer>, delim: Buffer): AsyncGenerator<Buffer> {
  let carry = first;
  try {
    for (;;) {
      const at = carry.indexOf(delim);
      if (at >= 0) {
        if (at > 0) yield carry.subarray(0, at);
        return;
      }
      const keep = Math.min(carry.length, delim.length - 1);
      if (carry.length > keep) yield carry.subarray(0, carry.length - keep);
      carry = carry.subarray(carry.length - keep);
      const next = await it.next();
      if (next.done) throw new MultipartError('The media part ended without its closing delimiter');
      carry = Buffer.concat([carry, next.value]);
    }
  } finally {
    // The epilogue is of no interest; the connection is released either way.
    await it.return?.();
  }
}
