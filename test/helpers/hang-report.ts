// Loaded into every test file's process by scripts/test.mjs (`--import`). A file still running
// HEARTH_TEST_HANG_REPORT_MS after it started (a minute before the runner's per-file timeout)
// writes what keeps its process alive to stderr, which the runner shows among its output: a file
// that hangs then names the kinds of resource it holds (timers among them) and the sockets, servers
// and child processes in detail, instead of only timing out.
const reportAfterMs = Number(process.env.HEARTH_TEST_HANG_REPORT_MS ?? 0);
// Only in a test file's own process, should the runner load it too.
if (reportAfterMs > 0 && process.argv[1]?.endsWith('.test.js')) setTimeout(report, reportAfterMs).unref();

interface Introspectable {
  _getActiveHandles(): unknown[];
}

function report(): void {
  const lines = [`hang report for ${process.argv[1]} after ${reportAfterMs} ms: ${process.getActiveResourcesInfo().join(', ')}`];
  for (const handle of (process as unknown as Introspectable)._getActiveHandles()) lines.push(`  ${describe(handle)}`);
  process.stderr.write(`${lines.join('\n')}\n`);
}

function describe(handle: unknown): string {
  const h = handle as Record<string, any>;
  const kind = h?.constructor?.name ?? typeof handle;
  switch (kind) {
    case 'Socket':
    case 'TLSSocket':
      // The process's own pipes (stdio, the runner's channel) have no addresses.
      if (h.localAddress === undefined && h.remoteAddress === undefined) return `pipe (fd ${h._handle?.fd})`;
      return `${kind} ${h.localAddress}:${h.localPort} -> ${h.remoteAddress ?? '(not connected)'}:${h.remotePort ?? ''}${h.connecting ? ' connecting' : ''}`;
    case 'Server':
      return `Server listening on ${JSON.stringify(h.address?.())}`;
    case 'ChildProcess':
      return `ChildProcess ${h.pid} ${h.spawnfile} ${(h.spawnargs ?? []).slice(1).join(' ').slice(0, 200)}`;
    default:
      return kind;
  }
}
