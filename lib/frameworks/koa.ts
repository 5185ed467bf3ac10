// `node-toa/koa`: app.use(toaKoa(options)) gives every context realRemoteAddress(). Koa 2 and 3.
// Start the server with toa.listen(http.createServer(app.callback()), { port }) so every SYN is
// saved; a middleware cannot see the server before its first request.
import type Koa from 'koa';
import type { IncomingMessage } from 'node:http';
import type { RealAddress } from '../index';
import { compileIntegration, enableOnFirstRequest, ipProperty, type IntegrationOptions } from './integration';

export type { RealAddress } from '../index';
export type ToaKoaOptions = IntegrationOptions;

declare module 'koa' {
  interface BaseContext {
    /** The client of this request's connection: see node-toa's realRemoteAddress(). */
    realRemoteAddress(): RealAddress;
  }
}

/** The part of Koa's context this middleware uses. */
export type ToaKoaContext = Pick<Koa.ParameterizedContext, 'req' | 'request'>;

export type ToaKoaMiddleware = (ctx: ToaKoaContext, next: () => Promise<unknown>) => Promise<unknown>;

type Augmented = ToaKoaContext & { realRemoteAddress?: () => RealAddress };

// A context made by hand (tests) may have no socket: it answers as a peer.
const NO_SOCKET = Object.freeze({});

/**
 * Koa middleware adding `ctx.realRemoteAddress()`; with `setIp: true`, `ctx.ip` (and
 * `ctx.request.ip`) is the client too. Options are validated and compiled now.
 *
 * @example
 *   app.use(toaKoa({ trustProxy: '10.0.0.0/8' }));
 *   app.use((ctx) => { ctx.body = ctx.realRemoteAddress().address; });
 *   await toa.listen(http.createServer(app.callback()), { port: 8080 });
 */
export function toaKoa(options?: ToaKoaOptions): ToaKoaMiddleware {
  const { resolve, setIp, enableOptions } = compileIntegration(options, 'toaKoa(options)');
  function realRemoteAddress(this: ToaKoaContext): RealAddress {
    return resolve(this.req.socket ?? NO_SOCKET);
  }
  // Defined on ctx.request: ctx.ip is Koa's delegate to it.
  const ip = setIp
    ? ipProperty((request) => resolve((request as { req: IncomingMessage }).req.socket ?? NO_SOCKET))
    : undefined;

  return function nodeToaKoa(ctx, next) {
    (ctx as Augmented).realRemoteAddress = realRemoteAddress;
    if (ip !== undefined) Object.defineProperty(ctx.request, 'ip', ip);
    enableOnFirstRequest(ctx.req.socket, 'koa', enableOptions);
    return next();
  };
}

export { toaKoa as toaMiddleware };
