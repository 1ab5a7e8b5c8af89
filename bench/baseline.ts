// A bare Fastify server with one PUT route shaped like /send: the ceiling
// that Hearth's send throughput is compared against on the same machine.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
let n = 0;
app.put('/_matrix/client/v3/rooms/:roomId/send/:type/:txn', async () => ({ event_id: `$${++n}` }));
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
