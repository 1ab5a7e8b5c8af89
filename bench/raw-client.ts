import { connect, type Socket } from 'node:net';

/**
 * One keep-alive HTTP/1.1 connection with requests written and responses
 * parsed by hand: as little client work per request as possible, so that
 * sequential request timings measure the server rather than the client
 * library (undici's per-request machinery costs about as much as a small
 * server handler on this kind of machine).
 */
export class RawConnection {
  private socket!: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;

  private constructor(private readonly host: string, private readonly port: number) {}

  static async open(baseUrl: string): Promise<RawConnection> {
    const u = new URL(baseUrl);
    const c = new RawConnection(u.hostname, Number(u.port));
    await new Promise<void>((resolve, reject) => {
      c.socket = connect({ host: c.host, port: c.port, noDelay: true }, resolve);
      c.socket.once('error', reject);
    });
    c.socket.on('data', (d: Buffer) => {
      c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
      const w = c.waiter;
      c.waiter = null;
      w?.();
    });
    return c;
  }

  async call<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? '' : JSON.stringify(body);
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n`;
    if (token) head += `authorization: Bearer ${token}\r\n`;
    if (body !== undefined) head += `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n`;
    this.socket.write(head + '\r\n' + payload);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const headText = this.buf.subarray(0, end).toString('latin1');
        const status = Number(headText.slice(9, 12));
        const m = /\r\ncontent-length: *(\d+)/i.exec(headText);
        if (m) {
          const len = Number(m[1]);
          if (this.buf.length >= end + 4 + len) {
            const text = this.buf.subarray(end + 4, end + 4 + len).toString('utf8');
            this.buf = this.buf.subarray(end + 4 + len);
            return { status, body: (text ? JSON.parse(text) : undefined) as T };
          }
        } else if (/\r\ntransfer-encoding: *chunked/i.test(headText)) {
          // A large /sync is written as it is made.
          const chunked = this.dechunk(end + 4);
          if (chunked) {
            this.buf = this.buf.subarray(chunked.next);
            return { status, body: JSON.parse(chunked.text) as T };
          }
        } else {
          throw new Error('response without content-length or chunked encoding');
        }
      }
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** The body of a chunked response starting at `at`, once it has all arrived. */
  private dechunk(at: number): { text: string; next: number } | null {
    const parts: Buffer[] = [];
    let i = at;
    for (;;) {
      const eol = this.buf.indexOf('\r\n', i);
      if (eol < 0) return null;
      const size = parseInt(this.buf.subarray(i, eol).toString('latin1'), 16);
      if (this.buf.length < eol + 2 + size + 2) return null;
      if (size === 0) return { text: Buffer.concat(parts).toString('utf8'), next: eol + 4 };
      parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
      i = eol + 2 + size + 2;
    }
  }

  close(): void {
    this.socket.end();
  }
}
