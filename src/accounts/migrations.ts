import type { Kysely } from 'kysely';
import type { Migration } from '../db/migrate.js';
import { canonicalEmail } from '../threepid/address.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'users, devices, tokens, profiles, user-interactive auth',
    async up(db) {
      await db.schema
        .createTable('users')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('password_hash', 'text')
        .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('deactivated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('devices')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('last_seen_ts', 'bigint')
        .addColumn('last_seen_ip', 'text')
        .addPrimaryKeyConstraint('devices_pk', ['user_id', 'device_id'])
        .execute();

      await db.schema
        .createTable('access_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addColumn('expires_ts', 'bigint')
        .addColumn('refresh_token_id', 'text')
        .execute();
      await db.schema.createIndex('access_tokens_device').on('access_tokens').columns(['user_id', 'device_id']).execute();
      await db.schema.createIndex('access_tokens_refresh').on('access_tokens').column('refresh_token_id').execute();

      await db.schema
        .createTable('refresh_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addColumn('next_token_id', 'text')
        .execute();
      await db.schema.createIndex('refresh_tokens_device').on('refresh_tokens').columns(['user_id', 'device_id']).execute();
      await db.schema.createIndex('refresh_tokens_next').on('refresh_tokens').column('next_token_id').execute();

      await db.schema
        .createTable('profiles')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('displayname', 'text')
        .addColumn('avatar_url', 'text')
        .addColumn('fields', 'text')
        .addColumn('search_text', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('uia_sessions')
        .addColumn('session_id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text')
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('body_hash', 'text')
        .addColumn('completed', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('uia_sessions_created').on('uia_sessions').column('created_ts').execute();

      await db.schema
        .createTable('registration_nonces')
        .addColumn('nonce', 'text', (c) => c.primaryKey())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 2,
    name: 'OpenID tokens',
    async up(db) {
      await db.schema
        .createTable('openid_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('expires_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('openid_tokens_expiry').on('openid_tokens').column('expires_ts').execute();
    },
  },
  {
    version: 3,
    name: 'login tokens; locked and suspended users',
    async up(db) {
      await db.schema
        .createTable('login_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('expires_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('login_tokens_expiry').on('login_tokens').column('expires_ts').execute();
      await db.schema.alterTable('users').addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('users').addColumn('suspended', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  {
    version: 4,
    name: 'guest accounts',
    async up(db) {
      // Guest accounts (spec: modules/guest_access) are users with this flag and no password.
      await db.schema.alterTable('users').addColumn('is_guest', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  {
    version: 5,
    name: 'third-party identifiers: validation sessions, addresses of accounts, identity server binds',
    async up(db) {
      // One row per requestToken session (client-server API "Adding Account Administrative Contact Information").
      await db.schema
        .createTable('threepid_validation_sessions')
        .addColumn('sid', 'text', (c) => c.primaryKey())
        .addColumn('medium', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('client_secret', 'text', (c) => c.notNull())
        .addColumn('last_send_attempt', 'bigint', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('next_link', 'text')
        .addColumn('validated_ts', 'bigint')
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('threepid_validation_sessions_secret')
        .on('threepid_validation_sessions')
        .columns(['medium', 'address', 'client_secret'])
        .unique()
        .execute();
      await db.schema.createIndex('threepid_validation_sessions_created').on('threepid_validation_sessions').column('created_ts').execute();

      // An address belongs to one account at most.
      await db.schema
        .createTable('user_threepids')
        .addColumn('medium', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('validated_ts', 'bigint', (c) => c.notNull())
        .addColumn('added_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('user_threepids_pk', ['medium', 'address'])
        .execute();
      await db.schema.createIndex('user_threepids_user').on('user_threepids').column('user_id').execute();

      // Binds made through /account/3pid/bind, so that delete and deactivate know whom to ask to unbind.
      await db.schema
        .createTable('threepid_id_server_binds')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('medium', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('id_server', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('threepid_id_server_binds_pk', ['user_id', 'medium', 'address', 'id_server'])
        .execute();

      // What a completed stage established (the address an m.login.email.identity stage proved), by stage type.
      await db.schema.alterTable('uia_sessions').addColumn('results', 'text', (c) => c.notNull().defaultTo('{}')).execute();
    },
  },
  {
    version: 6,
    name: 'email addresses in their case-folded form',
    async up(db) {
      // Addresses were stored lower-cased; the canonical form now case-folds the local part
      // (Strauß becomes strauss) and composes accents (NFC).
      await recanonicaliseEmails(db, 'user_threepids', ['medium', 'address']);
      await recanonicaliseEmails(db, 'threepid_id_server_binds', ['user_id', 'medium', 'address', 'id_server']);
      await recanonicaliseEmails(db, 'threepid_validation_sessions', ['medium', 'address', 'client_secret']);
    },
  },
];

/**
 * Rewrites each email address of `table` whose canonical form differs. `unique` are the columns
 * of the table's primary key or unique index: a row whose rewritten key another row already has
 * is left as it was (that address stays with the account that had the canonical spelling).
 */
async function recanonicaliseEmails(db: Kysely<any>, table: string, unique: string[]): Promise<void> {
  const rows: Record<string, string>[] = await db.selectFrom(table).select(unique).where('medium', '=', 'email').execute();
  for (const row of rows) {
    let address: string;
    try {
      address = canonicalEmail(row.address!);
    } catch {
      continue;
    }
    if (address === row.address) continue;
    const keyOf = (a: string) => unique.map((c) => [c, c === 'address' ? a : row[c]] as const);
    let taken = db.selectFrom(table).select('address');
    for (const [c, v] of keyOf(address)) taken = taken.where(c, '=', v);
    if (await taken.executeTakeFirst()) continue;
    let update = db.updateTable(table).set({ address });
    for (const [c, v] of keyOf(row.address!)) update = update.where(c, '=', v);
    await update.execute();
  }
}
