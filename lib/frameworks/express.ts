// `node-toa/express`: app.use(toaMiddleware(options)) gives every request realRemoteAddress().
// Express 4 and 5. Start the server with toa.listen(http.createServer(app), { port }) so every
// SYN is saved; a middleware cannot see the server before its first request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RealAddress } from '../index';
import { compileIntegration, enableOnFirstRequest, ipProperty, type IntegrationOptions } from './integration';

export type { RealAddress } from '../index';
export type ToaMiddlewareOptions = IntegrationOptions;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The client of this request's connection: see node-toa's realRemoteAddress(). */
      realRemoteAddress(): RealAddress;
    }
  }
}

/** The middleware's own shape, so these types need neither express nor @types/express. */
export type ToaMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

type ToaRequest = IncomingMessage & { realRemoteAddress?: () => RealAddress };

// A request made by hand (tests, in-memory servers) may have no socket: it answers as a peer.
const NO_SOCKET = Object.freeze({});

/**
 * Express middleware adding `req.realRemoteAddress()`; with `setIp: true`, `req.ip` is the
 * client too. Options are validated and compiled now (TypeError on a bad or unknown one).
 *
 * @example
 *   app.use(toaMiddleware({ trustProxy: '10.0.0.0/8' }));
 *   app.get('/', (req, res) => res.send(req.realRemoteAddress().address));
 *   await toa.listen(http.createServer(app), { port: 8080 });
 */
export function toaMiddleware(options?: ToaMiddlewareOptions): ToaMiddleware {
  const { resolve, setIp, enableOptions } = compileIntegration(options, 'toaMiddleware(options)');
  const socketOf = (req: object): object => (req as IncomingMessage).socket ?? NO_SOCKET;
  function realRemoteAddress(this: IncomingMessage): RealAddress {
    return resolve(socketOf(this));
  }
  const ip = setIp ? ipProperty((req) => resolve(socketOf(req))) : undefined;

  return function nodeToaMiddleware(req, _res, next) {
    (req as ToaRequest).realRemoteAddress = realRemoteAddress;
    if (ip !== undefined) Object.defineProperty(req, 'ip', ip);
    enableOnFirstRequest(req.socket, 'express', enableOptions);
    next();
  };
}
