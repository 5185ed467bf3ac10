// The six framework versions the integrations are tested on (Express 5 and 4, Koa 3 and 2,
// Fastify 5 and 4), each as an app that answers GET / with
// { real: <realRemoteAddress()>, ip: <the framework's ip> }, through node-toa's integration for it.
import * as http from 'node:http';
import { toaMiddleware } from '../../../lib/express';
import { fastifyToa } from '../../../lib/fastify';
import { toaKoa } from '../../../lib/koa';
import type { Framework } from './in-memory';

export type ExpressFactory = typeof import('express');
export type KoaClass = typeof import('koa');
export type FastifyFactory = typeof import('fastify').default;

/* eslint-disable @typescript-eslint/no-require-imports */
export const express5 = require('express') as ExpressFactory;
export const express4 = require('express4') as ExpressFactory;
export const Koa3 = require('koa') as KoaClass;
export const Koa2 = require('koa2') as KoaClass;
export const fastify5 = require('fastify') as FastifyFactory;
export const fastify4 = require('fastify4') as FastifyFactory;
/* eslint-enable @typescript-eslint/no-require-imports */

/** What the three integrations take in common. */
export interface IntegrationOptions {
  trustProxy?: string[];
  setIp?: boolean;
  ack?: boolean;
}

/** An Express app answering { real, ip }; `setup` runs before the middleware (app settings). */
export function expressApp(
  express: ExpressFactory,
  options?: Parameters<typeof toaMiddleware>[0],
  setup?: (a: ReturnType<ExpressFactory>) => void,
  factory: typeof toaMiddleware = toaMiddleware,
) {
  const a = express();
  setup?.(a);
  a.use(factory(options));
  a.get('/', (req, res) => {
    res.json({ real: req.realRemoteAddress(), ip: req.ip });
  });
  return a;
}

/** A Koa app answering { real, ip }; `proxy`: Koa's own setting (X-Forwarded-For). */
export function koaApp(Koa: KoaClass, options?: Parameters<typeof toaKoa>[0], proxy = false) {
  const app = new Koa({ proxy });
  app.use(toaKoa(options));
  app.use((ctx) => {
    ctx.body = { real: ctx.realRemoteAddress(), ip: ctx.ip };
  });
  return app;
}

/** A Fastify app answering { real, ip }; `trustProxy`: Fastify's own setting (X-Forwarded-For). */
export function fastifyApp(fastify: FastifyFactory, options?: Parameters<typeof fastifyToa>[1], trustProxy?: string) {
  const app = fastify(trustProxy === undefined ? {} : { trustProxy });
  app.register(fastifyToa, options ?? {});
  app.get('/', async (request) => ({ real: request.realRemoteAddress(), ip: request.ip }));
  return app;
}

/** A server (not listening yet) with one framework's app in it, and how to stop it. */
export interface AppServer {
  server: http.Server;
  close(): Promise<void>;
}

export interface FrameworkApp {
  name: string;
  family: 'express' | 'koa' | 'fastify';
  /** Its name for helpers/children/inject-app.js. */
  id: Framework;
  /**
   * The app in a server, not listening. `forwarded`: the framework's own proxy setting trusts
   * X-Forwarded-For from loopback. Fastify's is ready(): its plugin has enabled the server.
   */
  server(options?: IntegrationOptions, forwarded?: boolean): Promise<AppServer>;
}

/** A plain http server (Express, Koa) and how to stop it. */
function plain(server: http.Server): AppServer {
  return {
    server,
    async close() {
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}

/** Fastify's server after ready(), and app.close(). */
async function ready(app: ReturnType<typeof fastifyApp>): Promise<AppServer> {
  await app.ready();
  return { server: app.server, close: () => app.close() };
}

const trustLoopback = (a: ReturnType<ExpressFactory>) => a.set('trust proxy', 'loopback');

export const EXPRESS: FrameworkApp[] = [
  { name: 'Express 5', family: 'express', id: 'express5', server: async (o, fwd) => plain(http.createServer(expressApp(express5, o, fwd ? trustLoopback : undefined))) },
  { name: 'Express 4', family: 'express', id: 'express4', server: async (o, fwd) => plain(http.createServer(expressApp(express4, o, fwd ? trustLoopback : undefined))) },
];
export const KOA: FrameworkApp[] = [
  { name: 'Koa 3', family: 'koa', id: 'koa3', server: async (o, fwd) => plain(http.createServer(koaApp(Koa3, o, fwd).callback())) },
  { name: 'Koa 2', family: 'koa', id: 'koa2', server: async (o, fwd) => plain(http.createServer(koaApp(Koa2, o, fwd).callback())) },
];
export const FASTIFY: FrameworkApp[] = [
  { name: 'Fastify 5', family: 'fastify', id: 'fastify5', server: (o, fwd) => ready(fastifyApp(fastify5, o, fwd ? '127.0.0.1' : undefined)) },
  { name: 'Fastify 4', family: 'fastify', id: 'fastify4', server: (o, fwd) => ready(fastifyApp(fastify4, o, fwd ? '127.0.0.1' : undefined)) },
];
export const FRAMEWORKS: FrameworkApp[] = [...EXPRESS, ...KOA, ...FASTIFY];
