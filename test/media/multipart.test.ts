/**
 * The multipart/mixed codec of federation media (server-server content_repository.yaml): what
 * one side encodes the other decodes, whatever the chunking (a delimiter split across chunks),
 * with a preamble, a part without headers, a quoted boundary, and a Location part; truncated or
 * malformed bodies are errors, never silently short media.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { MultipartError, boundaryOf, decodeMultipart, encodeMultipart, newBoundary } from '../../src/media/multipart.js';

/** `bytes` delivered in chunks of `size` bytes. */
function chunked(bytes: Buffer, size: number): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

describe('multipart/mixed', () => {
  it('round-trips media whatever the chunk size, including bytes that look like a delimiter', async () => {
    const boundary = newBoundary();
    // Content holding CRLF, dashes and most of the boundary, but not the full delimiter.
    const content = Buffer.concat([Buffer.from(`\r\n--${boundary.slice(0, -1)}x\r\n--`), Buffer.alloc(5000, 0x2d), Buffer.from('end')]);
    const encoded = await buffer(encodeMultipart(boundary, {}, { 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename="a.png"' }, Readable.from([content])));
    for (const size of [1, 2, 7, 64, 1000, encoded.length]) {
      const part = await decodeMultipart(chunked(encoded, size), boundary);
      assert.deepEqual(part.metadata, {});
      assert.equal(part.headers['content-type'], 'image/png');
      assert.equal(part.headers['content-disposition'], 'inline; filename="a.png"');
      assert.deepEqual(await buffer(part.body), content, `chunks of ${size}`);
    }
  });

  it('reads a preamble, metadata, a part without headers, and a Location part', async () => {
    const body = Buffer.from('preamble text\r\n--b\r\nContent-Type: application/json\r\n\r\n{"k":1}\r\n--b\r\n\r\nraw\r\n--b--\r\n');
    const part = await decodeMultipart(chunked(body, 3), 'b');
    assert.deepEqual(part.metadata, { k: 1 });
    assert.deepEqual(part.headers, {});
    assert.equal((await buffer(part.body)).toString(), 'raw');

    const moved = await buffer(encodeMultipart('zz', {}, { Location: 'https://cdn.example/x' }));
    const loc = await decodeMultipart(chunked(moved, 5), 'zz');
    assert.equal(loc.headers.location, 'https://cdn.example/x');
    assert.equal((await buffer(loc.body)).length, 0);
  });

  it('finds the boundary parameter, quoted or not, only in multipart/mixed', () => {
    assert.equal(boundaryOf('multipart/mixed; boundary=abc'), 'abc');
    assert.equal(boundaryOf('Multipart/Mixed; charset=x; boundary="a b:c"'), 'a b:c');
    assert.equal(boundaryOf('multipart/form-data; boundary=abc'), undefined);
    assert.equal(boundaryOf('multipart/mixed'), undefined);
    assert.equal(boundaryOf(undefined), undefined);
  });

  it('a body cut before its closing delimiter, a second part missing, or bad metadata is an error', async () => {
    const full = await buffer(encodeMultipart('q', {}, { 'Content-Type': 'text/plain' }, Readable.from([Buffer.from('some media bytes')])));
    const cut = await decodeMultipart(chunked(full.subarray(0, full.length - 8), 4), 'q');
    await assert.rejects(buffer(cut.body), MultipartError);
    await assert.rejects(decodeMultipart(chunked(Buffer.from('--q\r\nContent-Type: application/json\r\n\r\n{}\r\n--q--\r\n'), 4), 'q'), MultipartError);
    await assert.rejects(decodeMultipart(chunked(Buffer.from('--q\r\nContent-Type: application/json\r\n\r\n{nope\r\n--q\r\n\r\nx\r\n--q--'), 4), 'q'), MultipartError);
    await assert.rejects(decodeMultipart(chunked(Buffer.from('no delimiter at all'), 4), 'q'), MultipartError);
  });
});
