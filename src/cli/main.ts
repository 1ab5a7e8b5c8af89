import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/validate.js';
import { hearthVersion } from '../version.js';
import { defaultConfigPath, generateConfigText, loadConfig } from '../config/load.js';
import { ALL_MIGRATIONS, createHomeserver, openDatabase } from '../homeserver.js';
import { runMigrations } from '../db/migrate.js';
import { isPostgresUrl } from '../db/connect.js';
import { migrateSqliteToPostgres } from '../db/migrate-to-postgres.js';
import { createLogger } from '../logger.js';
import { MatrixError } from '../http/errors.js';
import { promptSecret } from './prompt.js';

const HELP = `hearth: a Matrix homeserver

Usage:
  hearth start [--config FILE]              start the server (creates the config on first run)
  hearth register-user NAME [--admin] [--password PW] [--config FILE]
                                            create a user (asks for the password if not given)
  hearth generate-config [--config FILE]    write a new config file with fresh secrets
  hearth migrate [--config FILE]            apply database migrations and exit
  hearth migrate-to-postgres --to URL [--config FILE]
                                            copy the config's SQLite database into an empty
                                            PostgreSQL database and check every row arrived
  hearth --version                          print the version
  hearth --help                             this text

Environment overrides: HEARTH_CONFIG, HEARTH_SERVER_NAME, HEARTH_LISTEN, HEARTH_DATA_DIR,
HEARTH_DATABASE_URL, HEARTH_REGISTRATION (closed|token|open), HEARTH_RATE_LIMITS (on|off),
HEARTH_PUBLIC_BASEURL, HEARTH_LOG_LEVEL.
`;

/** Runs one CLI command; returns the exit code. User mistakes print a message, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        admin: { type: 'boolean' },
        password: { type: 'string' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (e) {
    console.error(`hearth: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    console.log(hearthVersion());
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command || command === 'help') {
    console.log(HELP);
    return command || values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'start':
        return await start(values.config);
      case 'register-user':
        return await registerUser(rest[0], values);
      case 'generate-config':
        return generateConfig(values.config);
      case 'migrate':
        return await migrate(values.config);
      case 'migrate-to-postgres':
        return await migrateToPostgres(values.config, values.to);
      default:
        console.error(`hearth: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`hearth: configuration error in ${e.file}: "${e.key}" ${e.problem}`);
      return 1;
    }
    if (e instanceof MatrixError) {
      console.error(`hearth: ${e.message} (${e.errcode})`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') {
      console.error(`hearth: the listen address is already in use (${err.message}); set "listen" or HEARTH_LISTEN`);
      return 1;
    }
    if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === '28P01' || err.code === '3D000') {
      console.error(`hearth: cannot connect to the database: ${err.message}`);
      return 1;
    }
    console.error(`hearth: ${err.message ?? String(e)}`);
    if (process.env.HEARTH_DEBUG) console.error(e);
    return 1;
  }
}

async function start(configFile?: string): Promise<number> {
  const loaded = loadConfig({ file: configFile });
  const logger = createLogger(loaded.config.log_level);
  if (loaded.generated) logger.info({ file: loaded.file }, 'wrote a new configuration file');
  // Listened for before the server starts: a signal while it starts (it answers requests before
  // start() returns) stops it cleanly once started, instead of killing the process.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const hs = await createHomeserver(loaded, { logger });
  await hs.start();
  const signal = await signalled;
  logger.info({ signal }, 'shutting down');
  await hs.stop().catch((err: unknown) => logger.error({ err }, 'error during shutdown'));
  logger.info('stopped');
  return 0;
}

async function registerUser(name: string | undefined, values: { config?: string; admin?: boolean; password?: string }): Promise<number> {
  if (!name) {
    console.error('hearth: register-user needs a user name, e.g. `hearth register-user alice`');
    return 2;
  }
  const loaded = loadConfig({ file: values.config });
  const localpart = name.startsWith('@') ? name.slice(1).split(':')[0] : name;
  let password = values.password;
  if (password === undefined) {
    password = await promptSecret(`Password for ${localpart}: `);
    if (process.stdin.isTTY) {
      const again = await promptSecret('Again: ');
      if (again !== password) {
        console.error('hearth: the passwords do not match');
        return 1;
      }
    }
  }
  if (!password) {
    console.error('hearth: the password must not be empty');
    return 1;
  }
  const hs = await createHomeserver(loaded, { logger: createLogger('warn') });
  try {
    const { userId } = await hs.ctx.services.accounts.createUser({ localpart, password, admin: values.admin === true });
    console.log(`Created ${userId}${values.admin ? ' (admin)' : ''}`);
  } finally {
    await hs.stop();
  }
  return 0;
}

function generateConfig(configFile?: string): number {
  const file = configFile ?? defaultConfigPath();
  if (existsSync(file)) {
    console.error(`hearth: ${file} already exists; remove it first to generate a new one`);
    return 1;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, generateConfigText(), { mode: 0o600 });
  console.log(`Wrote ${file}`);
  return 0;
}

async function migrate(configFile?: string): Promise<number> {
  const loaded = loadConfig({ file: configFile });
  const database = await openDatabase(loaded);
  try {
    const ran = await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    console.log(ran.length ? `Applied:\n  ${ran.join('\n  ')}` : 'The database is up to date.');
  } finally {
    await database.close();
  }
  return 0;
}

async function migrateToPostgres(configFile: string | undefined, to: string | undefined): Promise<number> {
  if (!to || !isPostgresUrl(to)) {
    console.error('hearth: migrate-to-postgres needs --to postgres://USER:PASSWORD@HOST:PORT/DATABASE (an empty database)');
    return 2;
  }
  const loaded = loadConfig({ file: configFile, create: false });
  const source = loaded.paths.database;
  if (source === null || source === ':memory:') {
    console.error(`hearth: the database in ${loaded.file} is not a SQLite file (database.url); nothing to migrate`);
    return 1;
  }
  if (!existsSync(source)) {
    console.error(`hearth: the SQLite database ${source} does not exist`);
    return 1;
  }
  console.log(`Copying ${source} to PostgreSQL...`);
  const result = await migrateSqliteToPostgres({ sqlitePath: source, postgresUrl: to, migrations: ALL_MIGRATIONS, log: (line) => console.log(line) });
  const rows = result.tables.reduce((n, t) => n + t.rows, 0);
  console.log(`Done: ${rows} rows in ${result.tables.length} tables.`);
  for (const s of result.skipped) console.log(`  not copied: ${s.table} (${s.reason})`);
  // Media bytes are not in the database: they stay on disk (or in the bucket) where the config points.
  if (!loaded.config.media.s3) console.log(`Media files stay in ${loaded.paths.dataDir}/media: keep data_dir, or copy them to a media.s3 bucket.`);
  console.log(`Now set database.url in ${loaded.file} to the PostgreSQL URL and start the server.`);
  return 0;
}
