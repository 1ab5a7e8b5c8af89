import * as nodeCrypto from 'node:crypto';

// The one-shot form (Node >= 20.12; read off the namespace so older versions still load) skips
// building a Hash object, which costs several times the hashing of a short string. Event hashes
// and access-token lookups take it on every send.
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;

/** SHA-256 of `data`'s UTF-8 bytes. */
export function sha256(data: string): Buffer;
export function sha256(data: string, encoding: 'hex'): string;
export function sha256(data: string, encoding?: 'hex'): Buffer | string {
  if (oneShot) return encoding ? oneShot('sha256', data, encoding) : oneShot('sha256', data, 'buffer');
  const h = nodeCrypto.createHash('sha256').update(data, 'utf8');
  return encoding ? h.digest(encoding) : h.digest();
}
