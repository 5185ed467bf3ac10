// `node-toa doctor --listen PORT`: after the machine checks, listen behind the proxy for a while
// and say in one line which packet its TOA arrives in, so an operator learns whether the
// application needs the ACK tap. The same Inspector as `inspect`, so the answers are the same.
import type { Socket } from 'node:net';
import * as http from 'node:http';
import * as toa from '../index';
import type { CheckResult } from './check-result';
import { Inspector, type InspectedConnection } from './inspect';

export interface PacketWatch {
  port: number;
  host?: string;
  trust: string;
  /** Stop after this long. */
  seconds: number;
  /** Or after this many connections. */
  count: number;
  /** Open the ACK tap too (the sock_ops program or packet sockets): without it only the SYN is seen. */
  ack: boolean;
}

/** What was seen, and the verdict as a doctor check (`toa-packet`). */
export interface PacketVerdict extends CheckResult {
  connections: number;
  byPacket: Record<'syn' | 'ack' | 'data', number>;
  untrusted: number;
}

export function verdict(s: { connections: number; withToa: number; untrustedToa: number; byPacket: PacketVerdict['byPacket'] }, ack: boolean): PacketVerdict {
  const { syn, ack: inAck, data } = s.byPacket;
  const base = { id: 'toa-packet', connections: s.connections, byPacket: s.byPacket, untrusted: s.untrustedToa };
  if (s.connections === 0) {
    return { ...base, status: 'warn', message: 'no connection arrived: point the proxy at this port and send traffic through it' };
  }
  const seen = `${s.connections} connection${s.connections === 1 ? '' : 's'}: TOA in the SYN ${syn}, the handshake ACK ${inAck}, the first data packet ${data}`;
  if (inAck + data > 0 && syn === 0) {
    return { ...base, status: 'warn', message: `${seen}: this proxy tags the ACK, not the SYN; the application needs the ACK tap ({ ack: true }, NODE_TOA_ACK=on)` };
  }
  if (syn > 0) {
    return { ...base, status: 'ok', message: `${seen}: this proxy tags the SYN; the SYN path is enough${inAck + data > 0 ? ' (it tags later packets too)' : ''}` };
  }
  if (s.untrustedToa > 0) {
    return { ...base, status: 'fail', message: `${seen}; ${s.untrustedToa} had TOA from a sender not in --trust: add the proxy's addresses` };
  }
  return {
    ...base,
    status: 'fail',
    message: `${seen}: no TOA at all${ack ? '' : ' in the SYN (try --ack: the proxy may tag the handshake ACK)'}`,
  };
}

/** Listens with `toa.listen()` (and the tap with `ack`), counts what arrives, closes. */
export async function watchPackets(w: PacketWatch, onListening: (port: number) => void = () => undefined): Promise<PacketVerdict> {
  const inspector = new Inspector({ trustProxy: w.trust });
  let seen = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const inspected = new WeakMap<object, InspectedConnection>();
  // HTTP, as `inspect` answers: a request through the proxy gets what was seen as JSON.
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify(inspected.get(req.socket) ?? null)}\n`);
  });
  server.on('connection', (socket: Socket) => {
    // Resolved at the first bytes, once per connection: the ACK tap's data case needs them, and
    // a client that is not HTTP counts too.
    socket.prependOnceListener('data', () => {
      inspected.set(socket, inspector.inspect(socket));
      if (++seen >= w.count) done();
    });
  });
  await toa.listen(server, { port: w.port, ...(w.host !== undefined ? { host: w.host } : {}), ack: w.ack });
  onListening((server.address() as { port: number }).port);
  const timer = setTimeout(done, w.seconds * 1000);
  await finished;
  clearTimeout(timer);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return verdict(inspector.summary(), w.ack);
}
