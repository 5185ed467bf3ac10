// Serves one request in memory (no socket at all) through a real app of the framework named in
// argv[2] and prints { status, body }. A child process of its own because light-my-request 6
// needs an ES-module-only dependency (cookie 2) that plain Node loads and jest's loader cannot.
'use strict';
// light-my-request 6 require()s an ES module, which Node 18 cannot; there the 5.x that Fastify 4
// brings (CommonJS, the same call) serves Express and Koa.
const inject = require(
  Number(process.versions.node.split('.')[0]) < 20
    ? require.resolve('light-my-request', { paths: [require.resolve('fastify4')] })
    : 'light-my-request',
);

const frameworks = {
  async express5() {
    return expressApp(require('express'));
  },
  async express4() {
    return expressApp(require('express4'));
  },
  async fastify5() {
    return fastifyApp(require('fastify'));
  },
  async fastify4() {
    return fastifyApp(require('fastify4'));
  },
  async koa3() {
    return koaApp(require('koa'));
  },
  async koa2() {
    return koaApp(require('koa2'));
  },
};

function expressApp(express) {
  const { toaMiddleware } = require('node-toa/express');
  const app = express();
  app.use(toaMiddleware({ trustProxy: ['198.51.100.2'], setIp: true }));
  app.get('/', (req, res) => res.json({ real: req.realRemoteAddress(), ip: req.ip }));
  return inject(app, { method: 'GET', url: '/' });
}

async function fastifyApp(fastify) {
  const app = fastify();
  await app.register(require('node-toa/fastify'), { trustProxy: ['198.51.100.2'], setIp: true });
  app.get('/', async (request) => ({ real: request.realRemoteAddress(), ip: request.ip }));
  try {
    // Fastify's own in-memory injection.
    return await app.inject({ method: 'GET', url: '/' });
  } finally {
    await app.close();
  }
}

function koaApp(Koa) {
  const toaKoa = require('node-toa/koa');
  const app = new Koa();
  app.use(toaKoa({ trustProxy: ['198.51.100.2'], setIp: true }));
  app.use((ctx) => {
    ctx.body = { real: ctx.realRemoteAddress(), ip: ctx.ip };
  });
  return inject(app.callback(), { method: 'GET', url: '/' });
}

frameworks[process.argv[2]]().then(
  (res) => {
    process.stdout.write(JSON.stringify({ status: res.statusCode, body: res.body }));
  },
  (error) => {
    process.stdout.write(JSON.stringify({ error: String(error && error.stack) }));
    process.exitCode = 1;
  },
);
