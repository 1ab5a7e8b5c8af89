/**
 * The canonical form of email addresses (appendices, "3PID Types" / "E-Mail"): the domain
 * lower-cased, the local part case-folded with Unicode full case folding, so
 * `Strauß@Example.com` is `strauss@example.com`; and the migration that rewrites addresses a
 * database stored in the older, lower-cased form.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import { canonicalAddress, canonicalEmail } from '../../src/threepid/address.js';
import { freshDatabase } from '../helpers/server.js';

describe('canonical email addresses', () => {
  it("folds the spec's example and other full case foldings; lower-cases the domain", () => {
    assert.equal(canonicalEmail('Strauß@Example.com'), 'strauss@example.com');
    assert.equal(canonicalEmail('  BOB@EXAMPLE.COM '), 'bob@example.com');
    // Capital sharp s, final sigma and the ﬀ ligature have full foldings that lower-casing misses.
    assert.equal(canonicalEmail('STRAẞE@example.org'), 'strasse@example.org');
    assert.equal(canonicalEmail('ΟΔΥΣΣΕΥΣ@example.org'), 'οδυσσευσ@example.org');
    assert.equal(canonicalEmail('oδυσσευς@example.org'), 'oδυσσευσ@example.org');
    assert.equal(canonicalEmail('eﬀort@example.org'), 'effort@example.org');
  });

  it('composes accents first: the decomposed and precomposed spellings are one address', () => {
    assert.equal(canonicalEmail('Zoe\u0308@example.org'), canonicalEmail('ZO\u00cb@example.org'));
    assert.equal(canonicalEmail('Zoe\u0308@example.org'), 'zo\u00eb@example.org');
  });

  it('refuses what is no address with M_INVALID_PARAM; leaves phone numbers as given', () => {
    for (const bad of ['no at sign', 'a@b@c', '<a@b.c>', `${'a'.repeat(251)}@b.c`]) {
      assert.throws(() => canonicalEmail(bad), (e: { errcode?: string }) => e.errcode === 'M_INVALID_PARAM', bad);
    }
    assert.equal(canonicalAddress('msisdn', '447700900123'), '447700900123');
  });
});

describe('the migration to case-folded addresses', () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;
  const db = () => database.db as unknown as Kysely<any>;

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, sqliteSynchronous: 'NORMAL', poolSize: 2 });
    // The schema as a server that stored lower-cased addresses left it (accounts up to version 5).
    const older = ALL_MIGRATIONS.map((d) => (d.domain === 'accounts' ? { ...d, migrations: d.migrations.filter((m) => m.version <= 5) } : d));
    await runMigrations(database.db, database.dialect, older);
    const row = (user: string, address: string) => ({ medium: 'email', address, user_id: user, validated_ts: 1, added_ts: 2 });
    await db()
      .insertInto('user_threepids')
      .values([
        row('@a:x', 'strauß@example.org'),
        row('@b:x', 'zoe\u0308@example.org'),
        // Two spellings of one address on two accounts: the one already canonical keeps it.
        row('@c:x', 'mass@example.org'),
        row('@d:x', 'maß@example.org'),
        row('@e:x', 'plain@example.org'),
      ])
      .execute();
    await db().insertInto('user_threepids').values({ medium: 'msisdn', address: 'ß1', user_id: '@f:x', validated_ts: 1, added_ts: 2 }).execute();
    await db().insertInto('threepid_id_server_binds').values({ user_id: '@a:x', medium: 'email', address: 'strauß@example.org', id_server: 'id.example' }).execute();
  });

  after(async () => {
    await database.close();
    await fresh.drop();
  });

  it('rewrites stored addresses to the canonical form, leaving a clash and other media alone', async () => {
    const ran = await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    assert.ok(ran.some((r) => r.startsWith('accounts/6 ')), ran.join(', '));
    const rows = await db().selectFrom('user_threepids').select(['user_id', 'medium', 'address']).orderBy('user_id').execute();
    assert.deepEqual(
      rows.map((r) => [r.user_id, r.address]),
      [
        ['@a:x', 'strauss@example.org'],
        ['@b:x', 'zo\u00eb@example.org'],
        ['@c:x', 'mass@example.org'],
        ['@d:x', 'maß@example.org'],
        ['@e:x', 'plain@example.org'],
        ['@f:x', 'ß1'],
      ],
    );
    const binds = await db().selectFrom('threepid_id_server_binds').select('address').execute();
    assert.deepEqual(binds, [{ address: 'strauss@example.org' }]);
  });
});
