// The preload's UDP part (NODE_TOA_UDP): every dgram socket the process binds reads the headers
// named, with the default resolver's trust (NODE_TOA_TRUST_PROXY through install()). Sockets Node
// binds by itself before a send() or connect() (a client's: `bind({ port: 0, exclusive: true },
// null)` inside lib/dgram.js) are left alone, and so are connect()ed ones.
import * as dgram from 'node:dgram';
import { dgramParserAvailable } from './header';
import { compileUdp, type UdpOptions } from './options';
import { enableUdpCompiled, udpEnabled } from './socket';
import { uoaTapPossible } from './uoa';

type Bind = (this: dgram.Socket, ...args: unknown[]) => dgram.Socket;

let undo: (() => void) | null = null;

/** Node's own implicit bind, from send() or connect() on an unbound socket. */
function implicitBind(args: unknown[]): boolean {
  if (args.length !== 2 || args[1] !== null) return false;
  const o = args[0] as { port?: unknown; exclusive?: unknown } | null;
  return typeof o === 'object' && o !== null && o.port === 0 && o.exclusive === true && Object.keys(o).length === 2;
}

/**
 * Patches dgram.Socket.prototype.bind so that each socket bound from now on gets `options`
 * (validated now: throws where they are bad). Returns the function that undoes it.
 */
export function installUdp(options: Omit<UdpOptions, 'trustProxy'>, where = 'NODE_TOA_UDP'): () => void {
  const compiled = compileUdp(options, where);
  if (compiled.formats !== 0 && !dgramParserAvailable()) {
    throw Object.assign(new Error(`node-toa: ${where} needs the native addon, which did not load here (see toa.support().error)`), {
      code: 'ERR_TOA_NO_ADDON',
    });
  }
  // uoa:on needs the tap on every socket: said now, where it was asked for, not per socket later.
  if (compiled.uoa === 'on') {
    try {
      uoaTapPossible('on');
    } catch (error) {
      throw Object.assign(
        new Error(`node-toa: ${where} asks for uoa:on, which needs CAP_NET_RAW for its packet tap (${(error as Error).message.replace(/^node-toa: /, '')})`),
        { code: 'ERR_TOA_UOA_NO_CAP_NET_RAW' },
      );
    }
  }
  if (undo !== null) undo();
  const proto = dgram.Socket.prototype as unknown as { bind: Bind };
  const original = proto.bind;
  proto.bind = function toaBind(this: dgram.Socket, ...args: unknown[]): dgram.Socket {
    if (!implicitBind(args) && !udpEnabled(this)) {
      try {
        enableUdpCompiled(this, compiled);
      } catch (error) {
        // After bind, so the socket is Node's own then: the app sees why through 'error'.
        const result = original.apply(this, args);
        process.nextTick(() => this.emit('error', error));
        return result;
      }
    }
    return original.apply(this, args);
  };
  const own = () => {
    proto.bind = original;
    if (undo === own) undo = null;
  };
  undo = own;
  return own;
}
