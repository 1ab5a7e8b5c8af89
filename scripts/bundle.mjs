// Bundles the compiled server into one file, dist/hearth.mjs, which `hearth`
// runs. One module instead of several hundred (Kysely alone is hundreds of
// files) saves a few MB of resident memory and a good part of start-up time;
// tests import the per-file build in dist/src, the CLI and benchmarks run this.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/hearth.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Native addons: loaded from node_modules as built for this machine. The S3 SDK is large and
  // loaded only by servers that store media in S3: it stays in node_modules too, and so do undici
  // and nodemailer, loaded on a server's first outbound request and first email (many servers
  // make neither).
  external: ['better-sqlite3', 'sharp', '@aws-sdk/client-s3', 'undici', 'nodemailer'],
  // ASCII source is held by V8 at one byte a character.
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  // CommonJS dependencies call require(); give the ES module one.
  banner: { js: "import { createRequire as __hearthRequire } from 'node:module'; const require = __hearthRequire(import.meta.url);" },
  logLevel: 'warning',
});
