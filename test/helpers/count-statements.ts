import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Context } from '../../src/context.js';
import { watchRawReads } from '../../src/db/sqlite-sync.js';

/**
 * Counts the statements whose SQL holds `marker`, while installed on the
 * server's database handle: those built with Kysely (through a plugin) and
 * the reads SQLite runs without it (sqlite-sync.ts's rawRows).
 */
export function countStatements(ctx: Context, marker: string): { count: () => number; remove: () => void } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      if (JSON.stringify(args.node).includes(marker)) n++;
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      return args.result;
    },
  };
  const c = ctx as { db: Context['db'] };
  const original = c.db;
  c.db = original.withPlugin(plugin);
  const unwatch = watchRawReads(original, (text) => {
    if (text.includes(marker)) n++;
  });
  return {
    count: () => n,
    remove: () => {
      unwatch();
      c.db = original;
    },
  };
}
