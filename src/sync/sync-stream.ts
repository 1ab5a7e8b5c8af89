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
 * from the first piece, while more are still being made. A failure of the
 * maker reaches every reader.
 */
export class SharedJson {
  private readonly pieces: string[] = [];
  private finished = false;
  private failure: { err: unknown } | null = null;
  private waiting: Array<() => void> = [];

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

  async *read(): AsyncGenerator<string> {
    for (let i = 0; ; ) {
      while (i < this.pieces.length) yield this.pieces[i++]!;
      if (this.failure) throw this.failure.err;
      if (this.finished) return;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
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

/** Joined-room entries as JSON members, for one piece. */
export function entriesJson(entries: Array<[string, JsonObject]>): string {
  return entries.map(([roomId, entry]) => `${JSON.stringify(roomId)}:${JSON.stringify(entry)}`).join(',');
}
