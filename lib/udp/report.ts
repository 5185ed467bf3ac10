// What the UDP path tells the operator: the counters of metrics().udp (per local port and summed),
// the `node-toa:resolve` diagnostics channel (when someone subscribes), and warnings said once
// per proxy (an attacker controls how often a datagram arrives, so the set is bounded too).
import type { Socket } from 'node:dgram';
import { channel } from 'node:diagnostics_channel';
import { udpCounts, type UdpCounts } from '../core/metrics';
import type { Endpoint } from '../core/types';
import { warnUdpDropped, warnUdpUntrusted } from '../util/warnings';
import type { UdpSource } from './flows';

/** Why a datagram was not delivered as a client's (or, for `untrusted`, delivered as data). */
export type UdpRefusedReason = 'untrusted' | 'malformed' | 'tooLarge' | 'missing';

/** The client of a datagram: what `rinfo` says after enable(). */
export interface UdpAnswer extends Endpoint {
  source: UdpSource;
  /** The proxy (the datagram's L3 source) when a header, the flow or UOA named the client. */
  proxy?: Endpoint;
}

/**
 * What `node-toa:resolve` subscribers receive for UDP (`transport: 'udp'`): once per flow a
 * trusted proxy's header names (again when its client changes), and once per datagram refused
 * (`refused` set; `answer` is then the sender's own address).
 */
export interface UdpResolveMessage {
  transport: 'udp';
  socket: Socket;
  answer: UdpAnswer;
  /** The socket's local port. */
  port: number;
  refused?: UdpRefusedReason;
  /** The parser's words for a malformed or tooLarge header. */
  problem?: string;
}

const resolveChannel = channel('node-toa:resolve');

export class UdpReport {
  private counts: [UdpCounts, UdpCounts] | undefined;
  private port = 0;

  constructor(private readonly socket: Socket) {}

  /** The socket's local port (asked once, at its first datagram: it is bound by then). */
  localPort(): number {
    if (this.port === 0) {
      try {
        this.port = this.socket.address().port;
      } catch {
        this.port = 0;
      }
    }
    return this.port;
  }

  private all(): [UdpCounts, UdpCounts] {
    return (this.counts ??= udpCounts(this.localPort()));
  }

  datagram(source: UdpSource): void {
    const [t, p] = this.all();
    t.datagrams[source]++;
    p.datagrams[source]++;
  }

  consumed(): void {
    const [t, p] = this.all();
    t.consumed++;
    p.consumed++;
  }

  flow(answer: UdpAnswer): void {
    const source = answer.source;
    if (source === 'peer') return;
    const [t, p] = this.all();
    t.flows[source]++;
    p.flows[source]++;
    if (resolveChannel.hasSubscribers) {
      resolveChannel.publish({ transport: 'udp', socket: this.socket, answer, port: this.localPort() } satisfies UdpResolveMessage);
    }
  }

  refused(reason: UdpRefusedReason, from: Endpoint, problem?: string): void {
    const [t, p] = this.all();
    if (reason === 'untrusted') {
      t.refused.untrusted++;
      p.refused.untrusted++;
    } else {
      t.dropped[reason]++;
      p.dropped[reason]++;
    }
    if (reason === 'untrusted') warnUdpUntrusted(from.address);
    else warnUdpDropped(from.address, this.localPort(), reason, problem);
    if (resolveChannel.hasSubscribers) {
      resolveChannel.publish({
        transport: 'udp',
        socket: this.socket,
        answer: { address: from.address, port: from.port, family: from.family, source: 'peer' },
        port: this.localPort(),
        refused: reason,
        ...(problem !== undefined ? { problem } : {}),
      } satisfies UdpResolveMessage);
    }
  }
}

