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

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  if (!server.listening) return;
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
}

function express(name: string, id: Framework, e: ExpressFactory): FrameworkApp {
  return {
    name,
    family: 'express',
    id,
    async server(options, forwarded) {
      const server = http.createServer(expressApp(e, options, forwarded ? (a) => a.set('trust proxy', 'loopback') : undefined));
      return { server, close: () => stop(server) };
    },
  };
}

function koa(name: string, id: Framework, Koa: KoaClass): FrameworkApp {
  return {
    name,
    family: 'koa',
    id,
    async server(options, forwarded) {
      const server = http.createServer(koaApp(Koa, options, forwarded).callback());
      return { server, close: () => stop(server) };
    },
  };
}

function fastifyVersion(name: string, id: Framework, f: FastifyFactory): FrameworkApp {
  return {
    name,
    family: 'fastify',
    id,
    async server(options, forwarded) {
      const app = fastifyApp(f, options, forwarded ? '127.0.0.1' : undefined);
      await app.ready();
      return { server: app.server, close: () => app.close() };
    },
  };
}

export const EXPRESS = [express('Express 5', 'express5', express5), express('Express 4', 'express4', express4)];
export const KOA = [koa('Koa 3', 'koa3', Koa3), koa('Koa 2', 'koa2', Koa2)];
export const FASTIFY = [fastifyVersion('Fastify 5', 'fastify5', fastify5), fastifyVersion('Fastify 4', 'fastify4', fastify4)];
export const FRAMEWORKS: FrameworkApp[] = [...EXPRESS, ...KOA, ...FASTIFY];
