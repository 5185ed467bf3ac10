// One Fastify app with node-toa's plugin, asked once with fastify.inject: what the matrix smoke
// server and the Bun/Deno probe report. `.cjs` for Deno, which reads a bare `.js` as an ES module.
'use strict';

async function fastifyInject(name, options) {
  const app = require(name)();
  await app.register(require('node-toa/fastify'), options);
  app.get('/', async (request) => request.realRemoteAddress());
  try {
    const res = await app.inject({ method: 'GET', url: '/' });
    return { status: res.statusCode, body: res.json() };
  } finally {
    await app.close();
  }
}

module.exports = { fastifyInject };
