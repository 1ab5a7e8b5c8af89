/**
 * Writing a large /sync answer as it is made. The joined rooms of a large
 * initial sync are rendered a batch at a time into JSON text that is written
 * out before the next batch is read, so a response never holds all of its
 * rooms as objects at once. The text of a batch is kept in a SharedJson
 * that several identical requests under way at the same moment read from:
 * the rooms are rendered once for all of them.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { JsonObject } from '../core/types.js';

/**
 * Pieces of JSON text made once and read by any number of readers, each
 * from the first piece, while more are still being made. A piece is let go
 * once every reader has taken it; from then on no new reader can start
 * (joinable). A failure of the maker reaches every reader.
 */
export class SharedJson {
  private readonly pieces: Array<string | undefined> = [];
  /** Pieces before this index have been taken by every reader and let go. */
  private released = 0;
  private readonly positions = new Set<{ at: number }>();
  private finished = false;
  private failure: { err: unknown } | null = null;
  private waiting: Array<() => void> = [];

  /** Whether a new reader can still read from the first piece. */
  joinable(): boolean {
    return this.released === 0;
  }

  push(piece: string): void {
    this.pieces.push(piece);
    this.wakeAll();
  }

  end(): void {
    this.finished = true;
    this.wakeAll();
  }

  fail(err: unknown): void {
    this.failure = { err };
    this.wakeAll();
  }

  /** A reader from the first piece; only while joinable. */
  read(): AsyncGenerator<string> {
    if (!this.joinable()) throw new Error('SharedJson: the first piece was let go');
    const me = { at: 0 };
    this.positions.add(me);
    return this.pull(me);
  }

  private async *pull(me: { at: number }): AsyncGenerator<string> {
    try {
      for (;;) {
        while (me.at < this.pieces.length) {
          const piece = this.pieces[me.at++]!;
          this.release();
          yield piece;
        }
        if (this.failure) throw this.failure.err;
        if (this.finished) return;
        await new Promise<void>((resolve) => this.waiting.push(resolve));
      }
    } finally {
      this.positions.delete(me);
      this.release();
    }
  }

  /** Lets go of the pieces every reader has taken. */
  private release(): void {
    let low = this.pieces.length;
    for (const p of this.positions) low = Math.min(low, p.at);
    if (this.positions.size === 0 && !this.finished) return;
    for (; this.released < low; this.released++) this.pieces[this.released] = undefined;
  }

  private wakeAll(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }
}

/**
 * The JSON text of `body` with the members of `rooms.join` taken from
 * `joined` (each piece one or more `"roomId":{...}` members separated by
 * commas), in the same key order as JSON.stringify of the whole answer.
 */
export async function* syncJson(body: JsonObject, joined: AsyncIterable<string>): AsyncGenerator<string> {
  const marker = `\u0000join-${randomUUID()}`;
  const rooms = body.rooms as JsonObject;
  const text = JSON.stringify({ ...body, rooms: { ...rooms, join: marker } });
  const at = text.indexOf(JSON.stringify(marker));
  yield `${text.slice(0, at)}{`;
  let first = true;
  for await (const piece of joined) {
    if (piece === '') continue;
    yield first ? piece : `,${piece}`;
    first = false;
  }
  yield `}${text.slice(at + JSON.stringify(marker).length)}`;
}

/** The answer as a byte stream that waits for the client to take each piece. */
export function syncStream(body: JsonObject, joined: AsyncIterable<string>): Readable {
  return Readable.from(syncJson(body, joined), { objectMode: false });
}

/**
 * Characters of JSON text per piece. Each piece becomes one Buffer on its way
 * to the socket; much larger ones cost several times more to make than their
 * bytes are worth: a string past V8's regular object size gets pages of its
 * own, and a Buffer past glibc's mmap threshold (128 KB as bin/hearth.js sets
 * it) gets fresh pages from the kernel, both faulted in and given back every
 * time. Joining a batch of rooms into one string and turning it into one
 * Buffer took two to three times the CPU of 64 KB pieces.
 */
export const PIECE_CHARS = 64 * 1024;

/**
 * Joined-room entries as JSON members, in pieces of about PIECE_CHARS
 * characters (a room larger than that is a piece of its own).
 */
export function entriesJson(entries: Array<[string, JsonObject]>): string[] {
  const pieces: string[] = [];
  let piece = '';
  for (const [roomId, entry] of entries) {
    const member = `${JSON.stringify(roomId)}:${JSON.stringify(entry)}`;
    if (piece !== '' && piece.length + member.length > PIECE_CHARS) {
      pieces.push(piece);
      piece = '';
    }
    piece = piece === '' ? member : `${piece},${member}`;
  }
  if (piece !== '') pieces.push(piece);
  return pieces;
}
