/**
 * Unpadded Base64 (spec: appendices, "Unpadded Base64" and "URL-safe unpadded
 * Base64"). Matrix writes unpadded; decoders should accept both.
 */

import { Buffer } from 'node:buffer';

export class Base64Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Base64Error';
  }
}

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9\-_]*={0,2}$/;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  const s = asBuffer(bytes).toString('base64');
  // At most two '=' at the end; slicing beats a regex replace on this hot path.
  if (s.charCodeAt(s.length - 1) !== 61) return s;
  return s.charCodeAt(s.length - 2) === 61 ? s.slice(0, -2) : s.slice(0, -1);
}

export function encodeUnpaddedBase64Url(bytes: Uint8Array): string {
  // Node's base64url is already unpadded.
  return asBuffer(bytes).toString('base64url');
}

/**
 * Decodes standard or URL-safe Base64, padded or not. Node's own decoder
 * silently skips junk, so the input is validated first: one alphabet only, no
 * whitespace, and a length that a real encoding could have.
 */
export function decodeBase64(s: string): Uint8Array {
  if (!STANDARD.test(s) && !URL_SAFE.test(s)) throw new Base64Error('invalid base64 character');
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const body = s.length - pad;
  if (pad > 0 && s.length % 4 !== 0) throw new Base64Error('invalid base64 padding');
  const rem = body % 4;
  if (rem === 1) throw new Base64Error('invalid base64 length');
  if (pad > 0 && rem + pad !== 4) throw new Base64Error('invalid base64 padding');
  const buf = Buffer.from(s, 'base64');
  // A plain Uint8Array view, so callers comparing with deepStrictEqual are not surprised by Buffer.
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
