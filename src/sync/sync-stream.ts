/**
 * Writing a large /sync answer as it is made. The joined rooms of an
 * initial sync are rendered a batch at a time into JSON text that is written
 * out before the next batch is read, so a response never holds all of its
 * rooms as objects at once. The text of a batch is kept in a SharedJson
 * that several identical requests under way at the same moment read from:
 * the rooms are rendered once for all of them.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { JsonObject } from '../core/types.js';

/** A piece of JSON text, as a string or as its UTF-8 bytes. */
export type JsonPiece = string | Uint8Array;

/**
 * Pieces of JSON text made once and read by any number of readers, each
 * from the first piece, while more are still being made. A piece is let go
 * once every reader has taken it; from then on no new reader can start
 * (joinable). A failure of the maker reaches every reader.
 */
export class SharedJson {
  private readonly pieces: Array<JsonPiece | undefined> = [];
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

  push(piece: JsonPiece): void {
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
  read(): AsyncGenerator<JsonPiece> {
    if (!this.joinable()) throw new Error('SharedJson: the first piece was let go');
    const me = { at: 0 };
    this.positions.add(me);
    return this.pull(me);
  }

  private async *pull(me: { at: number }): AsyncGenerator<JsonPiece> {
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
export async function* syncJson(body: JsonObject, joined: AsyncIterable<JsonPiece>): AsyncGenerator<JsonPiece> {
  const marker = `\u0000join-${randomUUID()}`;
  const rooms = body.rooms as JsonObject;
  const text = JSON.stringify({ ...body, rooms: { ...rooms, join: marker } });
  const at = text.indexOf(JSON.stringify(marker));
  yield `${text.slice(0, at)}{`;
  let first = true;
  for await (const piece of joined) {
    if (piece.length === 0) continue;
    if (!first) yield ',';
    yield piece;
    first = false;
  }
  yield `}${text.slice(at + JSON.stringify(marker).length)}`;
}

/** The answer as a byte stream that waits for the client to take each piece. */
export function syncStream(body: JsonObject, joined: AsyncIterable<JsonPiece>): Readable {
  return Readable.from(syncJson(body, joined), { objectMode: false });
}

/**
 * Bytes of JSON text per piece of joined rooms. A piece is written into a
 * Buffer of its own, from each room's JSON text as JSON.stringify made it:
 * text joined into one string is copied once more when it is encoded, and
 * much larger pieces cost several times more to make than their bytes are
 * worth (a string past V8's regular object size gets pages of its own, and
 * a Buffer past glibc's mmap threshold, 128 KB as bin/hearth.js sets it,
 * fresh pages from the kernel, faulted in and given back every time).
 */
export const PIECE_BYTES = 64 * 1024;

const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * Joined-room entries as JSON members (`"roomId":{...}` separated by commas),
 * in pieces of at most PIECE_BYTES bytes (a room larger than that is a piece
 * of its own).
 */
export function entriesJson(entries: Array<[string, JsonObject]>): Buffer[] {
  const pieces: Buffer[] = [];
  let texts: string[] = [];
  let bytes = 0;
  const flush = () => {
    const buf = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = 0; i < texts.length; i += 2) {
      if (i > 0) buf[at++] = COMMA;
      at += buf.write(texts[i]!, at);
      buf[at++] = COLON;
      at += buf.write(texts[i + 1]!, at);
    }
    pieces.push(buf);
    texts = [];
    bytes = 0;
  };
  for (const [roomId, entry] of entries) {
    const key = JSON.stringify(roomId);
    const value = JSON.stringify(entry);
    const size = Buffer.byteLength(key) + 1 + Buffer.byteLength(value);
    if (texts.length > 0 && bytes + 1 + size > PIECE_BYTES) flush();
    bytes += (texts.length > 0 ? 1 : 0) + size;
    texts.push(key, value);
  }
  if (texts.length > 0) flush();
  return pieces;
}
