/**
 * The row checksum `hearth migrate-to-postgres` compares: independent of row order (SQLite and
 * PostgreSQL sort text differently), blind to how a value is typed (42 and '42' are stored alike),
 * and changed by any difference in content, count or column.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RowChecksum } from '../../src/db/table-catalog.js';

function checksum(rows: unknown[][]): RowChecksum {
  const c = new RowChecksum();
  for (const r of rows) c.add(r);
  return c;
}

describe('RowChecksum', () => {
  const rows = [
    ['!a:x', 1, 'B'],
    ['!b:x', 2, null],
    ['!c:x', 3, 'a'],
  ];

  it('does not depend on row order or on number-vs-text representation', () => {
    const a = checksum(rows);
    const b = checksum([rows[2], rows[0], rows[1]].map((r) => r.map((v) => (typeof v === 'number' ? String(v) : v))));
    assert.equal(a.hex, b.hex);
    assert.equal(a.count, 3);
  });

  it('changes with a changed value, a null, a missing or a duplicated row, or moved columns', () => {
    const base = checksum(rows).hex;
    assert.notEqual(checksum([rows[0], rows[1], ['!c:x', 3, 'A']]).hex, base);
    assert.notEqual(checksum([rows[0], ['!b:x', 2, ''], rows[2]]).hex, base);
    assert.notEqual(checksum([rows[0], rows[1]]).hex, base);
    assert.notEqual(checksum([...rows, rows[0]]).hex, base);
    assert.notEqual(checksum([rows[0], rows[1], ['!c:x', 'a', 3]]).hex, base);
  });
});
