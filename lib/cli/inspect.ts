// `node-toa inspect`: what the server learns about each connection, as a line an operator reads
// per connection, and the tally printed at the end. Uses only the public API, like an application.
import type { Socket } from 'node:net';
import { hostPort, mappedIPv4 } from '../util/address';
import { createResolver, type Endpoint, type KindSpec, type RealAddress, type TrustProxy } from '../index';

export interface InspectOptions {
  trustProxy: TrustProxy;
  kinds?: readonly KindSpec[];
}

/** What `inspect` learnt of one connection (a line of its output, or a JSON object). */
export interface InspectedConnection {
  time: string;
  /** The L3 peer: the proxy when one is in front, else the client itself. */
  peer: Endpoint;
  /** The real client, as realRemoteAddress() answers. */
  client: Endpoint;
  source: RealAddress['source'];
  /** The TCP option kind the client address came from (source 'toa'). */
  kind?: number;
  /** Which packet carried it (source 'toa'): 'ack' or 'data' means the application needs the ACK tap. */
  packet?: 'syn' | 'ack' | 'data';
  /** This server's own address as the connection reached it. */
  local: { address: string; port: number };
  /** A TOA was there but its sender is not in --trust, so it was ignored. */
  untrustedToa?: Endpoint & { kind: number };
}

export interface PeerTally {
  connections: number;
  withToa: number;
  untrustedToa: number;
}

export interface Summary {
  connections: number;
  withToa: number;
  untrustedToa: number;
  /** Connections with TOA, by the packet that carried it. */
  byPacket: Record<'syn' | 'ack' | 'data', number>;
  byPeer: Record<string, PeerTally>;
  seconds: number;
}

function endpointOf(a: Endpoint): Endpoint {
  return { address: a.address, port: a.port, family: a.family };
}

// A dual-stack listener sees IPv4 as ::ffff:a.b.c.d; show it as the wire had it.
function unmapped(address: string): string {
  return mappedIPv4(address) ?? address;
}

/** `address:port` of an endpoint, IPv6 in brackets. */
export function endpointText(e: { address: string; port: number }): string {
  return hostPort(e.address, e.port);
}

export class Inspector {
  private readonly resolve: (socket: object) => RealAddress;
  // The same kinds with every sender trusted: tells "no TOA" apart from "TOA from an untrusted
  // sender". It costs nothing more: the saved SYN, read once, is cached on the socket.
  private readonly resolveAny: (socket: object) => RealAddress;
  private readonly started = Date.now();
  private readonly tallies = new Map<string, PeerTally>();
  private total: PeerTally = { connections: 0, withToa: 0, untrustedToa: 0 };
  private readonly byPacket = { syn: 0, ack: 0, data: 0 };

  /** Validates the options (TypeError/RangeError from the core, naming the bad value). */
  constructor(options: InspectOptions) {
    this.resolve = createResolver({ trustProxy: options.trustProxy, ...(options.kinds ? { kinds: options.kinds } : {}) });
    this.resolveAny = createResolver({ trustProxy: true, ...(options.kinds ? { kinds: options.kinds } : {}) });
  }

  inspect(socket: Socket): InspectedConnection {
    const answer = this.resolve(socket);
    const peer = answer.proxy ?? answer;
    const seen: InspectedConnection = {
      time: new Date().toISOString(),
      peer: endpointOf(peer),
      client: endpointOf(answer),
      source: answer.source,
      ...(answer.kind !== undefined ? { kind: answer.kind } : {}),
      ...(answer.packet !== undefined ? { packet: answer.packet } : {}),
      local: { address: unmapped(socket.localAddress ?? ''), port: socket.localPort ?? 0 },
    };
    if (answer.source !== 'toa') {
      const any = this.resolveAny(socket);
      if (any.source === 'toa' && any.kind !== undefined) seen.untrustedToa = { ...endpointOf(any), kind: any.kind };
    }
    this.count(seen);
    return seen;
  }

  private count(seen: InspectedConnection): void {
    const key = seen.peer.address;
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { connections: 0, withToa: 0, untrustedToa: 0 };
      this.tallies.set(key, tally);
    }
    for (const t of [tally, this.total]) {
      t.connections++;
      if (seen.source === 'toa') t.withToa++;
      if (seen.untrustedToa !== undefined) t.untrustedToa++;
    }
    if (seen.packet !== undefined) this.byPacket[seen.packet]++;
  }

  summary(): Summary {
    return {
      ...this.total,
      byPacket: { ...this.byPacket },
      byPeer: Object.fromEntries(this.tallies),
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
    };
  }
}

export function formatConnection(r: InspectedConnection): string {
  let line = `${r.time}  peer ${endpointText(r.peer)}  client ${endpointText(r.client)}  source ${r.source}`;
  if (r.kind !== undefined) line += `  kind ${r.kind}`;
  if (r.packet !== undefined) line += `  in ${r.packet === 'syn' ? 'the SYN' : r.packet === 'ack' ? 'the handshake ACK' : 'the first data packet'}`;
  if (r.untrustedToa !== undefined) {
    line +=
      `  (ignored TOA kind ${r.untrustedToa.kind} saying ${endpointText(r.untrustedToa)}: ` +
      `${r.peer.address} is not trusted; add it with --trust)`;
  }
  return line;
}

export function formatSummary(s: Summary): string {
  const lines = [
    `${s.connections} connection${s.connections === 1 ? '' : 's'} in ${s.seconds} s, ` +
      `${s.withToa} with TOA` +
      (s.untrustedToa > 0 ? `, ${s.untrustedToa} with TOA from an untrusted peer (ignored)` : ''),
  ];
  if (s.withToa > 0) {
    const { syn, ack, data } = s.byPacket;
    lines.push(
      `  TOA carried by: the SYN ${syn}, the handshake ACK ${ack}, the first data packet ${data}` +
        (ack + data > 0 ? ' (the application needs the ACK tap: { ack: true }, or node-toa/preload where the sock_ops program loads or CAP_NET_RAW is there)' : ''),
    );
  }
  const peers = Object.entries(s.byPeer).sort((a, b) => b[1].connections - a[1].connections);
  const width = Math.max(0, ...peers.map(([address]) => address.length));
  for (const [address, t] of peers) {
    lines.push(
      `  ${address.padEnd(width)}  ${t.connections} connection${t.connections === 1 ? '' : 's'}, ${t.withToa} with TOA` +
        (t.untrustedToa > 0 ? `, ${t.untrustedToa} untrusted TOA` : ''),
    );
  }
  return lines.join('\n');
}
