import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';

/**
 * Just enough of a TURN client (RFC 8656 over STUN, RFC 8489) to ask for an
 * allocation with long-term credentials: Allocate, the 401 with realm and
 * nonce, Allocate again with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
 */

const MAGIC = 0x2112a442;
const ALLOCATE = 0x0003;
const ALLOCATE_OK = 0x0103;
const ATTR = { USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, LIFETIME: 0x000d, REALM: 0x0014, NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016, REQUESTED_TRANSPORT: 0x0019 };

export interface AllocateResult {
  ok: boolean;
  /** STUN error code when refused (401: bad credentials). */
  errorCode?: number;
  relayed?: { address: string; port: number };
  lifetime?: number;
}

function attr(type: number, value: Buffer): Buffer {
  const pad = (4 - (value.length % 4)) % 4;
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc(pad)]);
}

function message(type: number, tid: Buffer, attrs: Buffer[], key?: Buffer): Buffer {
  const body = Buffer.concat(attrs);
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0);
  head.writeUInt32BE(MAGIC, 4);
  tid.copy(head, 8);
  if (!key) {
    head.writeUInt16BE(body.length, 2);
    return Buffer.concat([head, body]);
  }
  // The integrity covers the message with its length already counting the MESSAGE-INTEGRITY attribute.
  head.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([head, body])).digest();
  return Buffer.concat([head, body, attr(ATTR.MESSAGE_INTEGRITY, mac)]);
}

function parse(buf: Buffer): { type: number; attrs: Map<number, Buffer> } {
  const type = buf.readUInt16BE(0);
  const len = buf.readUInt16BE(2);
  const attrs = new Map<number, Buffer>();
  for (let off = 20; off < 20 + len; ) {
    const t = buf.readUInt16BE(off);
    const l = buf.readUInt16BE(off + 2);
    attrs.set(t, buf.subarray(off + 4, off + 4 + l));
    off += 4 + l + ((4 - (l % 4)) % 4);
  }
  return { type, attrs };
}

function errorCode(v: Buffer | undefined): number | undefined {
  return v ? v[2]! * 100 + v[3]! : undefined;
}

export async function allocate(host: string, port: number, username: string, password: string, timeoutMs = 5000): Promise<AllocateResult> {
  const sock = createSocket('udp4');
  const exchange = (msg: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer from the TURN server')), timeoutMs);
      sock.once('message', (data) => {
        clearTimeout(timer);
        resolve(data);
      });
      sock.send(msg, port, host);
    });
  try {
    const transport = attr(ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
    const first = parse(await exchange(message(ALLOCATE, randomBytes(12), [transport])));
    const realm = first.attrs.get(ATTR.REALM);
    const nonce = first.attrs.get(ATTR.NONCE);
    if (errorCode(first.attrs.get(ATTR.ERROR_CODE)) !== 401 || !realm || !nonce) throw new Error('expected a 401 challenge with realm and nonce');
    const key = createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest();
    const attrs = [transport, attr(ATTR.USERNAME, Buffer.from(username)), attr(ATTR.REALM, realm), attr(ATTR.NONCE, nonce)];
    const second = parse(await exchange(message(ALLOCATE, randomBytes(12), attrs, key)));
    if (second.type !== ALLOCATE_OK) return { ok: false, errorCode: errorCode(second.attrs.get(ATTR.ERROR_CODE)) };
    const x = second.attrs.get(ATTR.XOR_RELAYED_ADDRESS)!;
    const xport = x.readUInt16BE(2) ^ (MAGIC >>> 16);
    const xaddr = (x.readUInt32BE(4) ^ MAGIC) >>> 0;
    return {
      ok: true,
      relayed: { address: [24, 16, 8, 0].map((s) => (xaddr >>> s) & 255).join('.'), port: xport },
      lifetime: second.attrs.get(ATTR.LIFETIME)?.readUInt32BE(0),
    };
  } finally {
    sock.close();
  }
}
