// An ordinary Fastify app: its own logger (the "incoming request" line has remoteAddress) and
// @fastify/rate-limit. Start it with the preload:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload fastify.js
'use strict';
const fastify = require('fastify');

async function main() {
  const app = fastify({ logger: true });
  await app.register(require('@fastify/rate-limit'), { max: Number(process.env.RATE_LIMIT || 100), timeWindow: '1 minute' });
  app.get('/', async (request) => {
    const { remoteAddress, remotePort, remoteFamily } = request.socket;
    return { ip: request.ip, remoteAddress, remotePort, remoteFamily };
  });
  await app.listen({ port: Number(process.env.PORT || 3000), host: process.env.HOST || '::' });
  const { address, port } = app.server.address();
  console.log(`listening on ${address}:${port}`);
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
