/**
 * A balancer for tests: an HTTP server on loopback that hands each request to the next of
 * several nodes in turn, as a round-robin load balancer in front of a cluster would. Requests of
 * one client (one keep-alive connection) land on different nodes, so a test written for one server
 * shows whether the nodes agree.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobin {
  url: string;
  /** Requests handed to each node so far. */
  counts: number[];
  close(): Promise<void>;
}

export async function startRoundRobin(nodeUrls: () => string[]): Promise<RoundRobin> {
  const agent = new Agent({ keepAlive: true });
  const counts: number[] = [];
  let next = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const urls = nodeUrls();
    const i = next++ % urls.length;
    counts[i] = (counts[i] ?? 0) + 1;
    const target = new URL(urls[i]!);
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: `balancer: ${err.message}` }));
    });
    // A client that gives up (an aborted long-poll) ends the request to the node too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
