// `node-toa/fastify`: app.register(fastifyToa, options) gives every request realRemoteAddress().
// Fastify 4 and 5. The plugin sees `fastify.server` at registration, so it turns TCP_SAVE_SYN on
// itself; toa.listen(app.server, { port }) after `await app.ready()` also saves the first SYN.
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingMessage } from 'node:http';
import { clusterPrimaryEnabled, enable, type RealAddress } from '../index';
import { compileIntegration, ipProperty, type IntegrationOptions } from './integration';
import { isServer } from '../util/server-like';

export type { RealAddress } from '../index';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client of this request's connection: see node-toa's realRemoteAddress(). */
    realRemoteAddress(): RealAddress;
  }
}

/** The core options (trustProxy, kinds, multiple), setIp (`request.ip` is the client too), ack and proxyProtocol. */
export type FastifyToaOptions = IntegrationOptions;

// Options Fastify itself reads from register()'s second argument; the plugin ignores them.
const REGISTER_KEYS: readonly string[] = ['prefix', 'logLevel', 'logSerializers'];

// A request without a socket (hand-made in a test) answers as a peer.
const NO_SOCKET = Object.freeze({});

function ownOptions(options: unknown): FastifyToaOptions | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    return options as FastifyToaOptions | undefined;
  }
  const own: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) if (!REGISTER_KEYS.includes(key)) own[key] = value;
  return Object.keys(own).length === 0 ? undefined : (own as FastifyToaOptions);
}

const plugin: FastifyPluginCallback<FastifyToaOptions> = (fastify, options, done) => {
  let compiled;
  try {
    compiled = compileIntegration(ownOptions(options), 'fastifyToa(options)', true);
  } catch (error) {
    done(error as Error);
    return;
  }
  const { resolve, setIp, enableOptions } = compiled;
  const socketOf = (request: object): object =>
    ((request as FastifyRequest).raw as IncomingMessage | undefined)?.socket ?? NO_SOCKET;

  fastify.decorateRequest('realRemoteAddress', function realRemoteAddress(this: FastifyRequest): RealAddress {
    return resolve(socketOf(this));
  });

  if (setIp) {
    const ip = ipProperty((request) => resolve(socketOf(request)));
    fastify.addHook('onRequest', function nodeToaSetIp(request, _reply, next) {
      Object.defineProperty(request, 'ip', ip);
      next();
    });
  }

  // Now, before Fastify listens: then only the SYNs of the moment between listen(2) and the
  // 'listening' event can be missed (none with toa.listen). In a round-robin cluster worker the
  // primary's socket is the one (enableCluster()).
  if (isServer(fastify.server) && (enableOptions !== undefined || !clusterPrimaryEnabled())) {
    try {
      enable(fastify.server, enableOptions);
    } catch (error) {
      done(error as Error);
      return;
    }
  }
  done();
};

/** The Fastify plugin: `app.register(fastifyToa, { trustProxy: '10.0.0.0/8' })`. */
export const fastifyToa = fp(plugin, { fastify: '>=4', name: 'node-toa' });
