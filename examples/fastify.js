// node examples/fastify.js — a Fastify app that prints the real client of every request.
//   PORT (default 3000), HOST (default: every address), TRUST_PROXY: your L4 proxy's addresses
//   or CIDR ranges, comma-separated (default 127.0.0.1, to try it on this machine).
'use strict';
const fastify = require('fastify');
const toa = require('node-toa');

async function main() {
  const app = fastify();
  await app.register(require('node-toa/fastify'), { trustProxy: process.env.TRUST_PROXY || '127.0.0.1', setIp: true });

  app.get('/*', async (request) => {
    const client = request.realRemoteAddress();
    const via = client.proxy ? ` via ${client.proxy.address}` : '';
    console.log(`${request.method} ${request.url} from ${client.address}:${client.port} (${client.source}${via})`);
    return `hello ${client.address}:${client.port} (${client.source})\n`;
  });

  // app.listen() works too (the plugin enables the server); toa.listen() leaves no gap at all.
  await app.ready();
  await toa.listen(app.server, { port: process.env.PORT || 3000, host: process.env.HOST });
  const { address, port } = app.server.address();
  console.log(`listening on ${address}:${port}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
