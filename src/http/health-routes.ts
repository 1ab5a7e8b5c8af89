import type { NodeRegistry } from '../cluster/node-registry.js';
import type { Context } from '../context.js';
import { pendingMigrations, type DomainMigrations } from '../db/migrate.js';
import type { Route } from './router.js';

/** A check that has not answered by then counts as failed: a balancer must not wait on a cut-off database. */
const CHECK_TIMEOUT_MS = 2000;

interface Checks {
  database: boolean;
  migrations: boolean;
  bus: boolean;
}

/**
 * Operations endpoints for a balancer or an orchestrator (outside the Matrix
 * API): `/health` says the process answers; `/ready` says this node can
 * serve: its database takes a write (the node's heartbeat), every migration
 * is applied, and the bus hears the other nodes. A node that is not ready
 * answers 503 so the balancer sends its clients elsewhere. Both name this
 * node; /ready also lists the nodes alive in the cluster.
 */
export function healthRoutes(ctx: Context, nodes: NodeRegistry, migrations: DomainMigrations[]): Route[] {
  return [
    {
      method: 'GET',
      path: '/health',
      prefix: '',
      versions: [],
      auth: 'none',
      handler: () => ({ status: 'ok', node: nodes.nodeId }),
    },
    {
      method: 'GET',
      path: '/ready',
      prefix: '',
      versions: [],
      auth: 'none',
      handler: async (_req, reply) => {
        const [database, pending, live] = await Promise.all([
          withTimeout(nodes.beat().then(() => true)),
          withTimeout(pendingMigrations(ctx.db, migrations)),
          withTimeout(nodes.live()),
        ]);
        const checks: Checks = { database: database === true, migrations: Array.isArray(pending) && pending.length === 0, bus: ctx.bus.listening };
        const ready = checks.database && checks.migrations && checks.bus;
        return reply.code(ready ? 200 : 503).send({ ready, node: nodes.nodeId, checks, nodes: live?.map((n) => n.nodeId) ?? [] });
      },
    },
  ];
}

/** The promise's value, or null when it failed or took longer than the timeout. */
async function withTimeout<T>(p: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p.catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
