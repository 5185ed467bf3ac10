// A UDP proxy for tests, one per producer behaviour: it receives a client's datagrams on its front
// socket and forwards each through an upstream socket of its own per client (full NAT: the server
// sees the relay's address and a port per flow), with
// - 'spp': Cloudflare Spectrum / EdgeOne's 38-byte SPP header on every datagram, and it expects the
//   same header back on every reply (counted in `replies`), which it strips;
// - 'pp-first': a PROXY v2 DGRAM header on the first datagram of a flow only (Spectrum, DPVS);
// - 'pp-every': one on every datagram (caddy-l4, go-proxyproto, go-mmproxy);
// - 'plain': nothing (a trusted proxy that sends no header).
// Replies from the server go back to the client from the front socket. The client the header names
// may be a claimed documentation address (`claim`), so a test tells it apart from the relay's.
import * as dgram from 'node:dgram';
import { ppDgramHeader, sppHeader, type UdpEndpoint } from '../vectors/udp-vectors';

export { ppDgramHeader, sppHeader, type UdpEndpoint };

export type RelayMode = 'spp' | 'pp-first' | 'pp-every' | 'plain';

export interface RelayOptions {
  mode: RelayMode;
  server: UdpEndpoint;
  /** The relay's own address, front and upstream: '127.0.0.1' or '::1'. */
  host: string;
  /** The client a header names for a real client (default: the real one). */
  claim?: (real: UdpEndpoint) => UdpEndpoint;
}

interface RelayFlow {
  real: UdpEndpoint;
  claimed: UdpEndpoint;
  upstream: dgram.Socket;
  header: Buffer | undefined;
  sent: number;
}

export class UdpRelay {
  /** Replies from the server: with the flow's SPP header (spp), without one, or with a wrong one. */
  readonly replies = { withHeader: 0, withoutHeader: 0, wrongHeader: 0 };
  private readonly flows = new Map<string, RelayFlow>();
  private readonly pending = new Map<string, Promise<RelayFlow>>();

  private constructor(
    readonly options: RelayOptions,
    private readonly front: dgram.Socket,
  ) {
    front.on('message', (msg, rinfo) => this.fromClient(msg, { address: rinfo.address, port: rinfo.port }));
  }

  static async start(options: RelayOptions): Promise<UdpRelay> {
    const front = dgram.createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => front.bind(0, options.host, resolve));
    return new UdpRelay(options, front);
  }

  get endpoint(): UdpEndpoint {
    return { address: this.options.host, port: this.front.address().port };
  }

  /** The upstream ends (what the server sees as the datagrams' sources), by real client. */
  upstreamOf(real: UdpEndpoint): UdpEndpoint | undefined {
    const f = this.flows.get(`${real.address} ${real.port}`);
    return f === undefined ? undefined : { address: this.options.host, port: f.upstream.address().port };
  }

  private flowOf(real: UdpEndpoint): Promise<RelayFlow> {
    const key = `${real.address} ${real.port}`;
    let p = this.pending.get(key);
    if (p === undefined) this.pending.set(key, (p = this.newFlow(key, real)));
    return p;
  }

  private async newFlow(key: string, real: UdpEndpoint): Promise<RelayFlow> {
    const upstream = dgram.createSocket(this.options.server.address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => upstream.bind(0, this.options.host, resolve));
    const claimed = this.options.claim?.(real) ?? real;
    const flow: RelayFlow = { real, claimed, upstream, header: undefined, sent: 0 };
    if (this.options.mode === 'spp') flow.header = sppHeader(claimed, this.endpoint);
    else if (this.options.mode !== 'plain') flow.header = ppDgramHeader(claimed, this.endpoint);
    const f = flow;
    upstream.on('message', (msg) => this.fromServer(f, msg));
    this.flows.set(key, flow);
    return flow;
  }

  private fromClient(msg: Buffer, real: UdpEndpoint): void {
    void this.flowOf(real).then((flow) => {
      const withHeader = flow.header !== undefined && (this.options.mode !== 'pp-first' || flow.sent === 0);
      flow.sent++;
      const out = withHeader ? Buffer.concat([flow.header!, msg]) : msg;
      flow.upstream.send(out, this.options.server.port, this.options.server.address);
    });
  }

  private fromServer(flow: RelayFlow, msg: Buffer): void {
    let payload = msg;
    if (this.options.mode === 'spp') {
      if (msg.length >= 38 && msg.subarray(0, 38).equals(flow.header!)) {
        this.replies.withHeader++;
        payload = msg.subarray(38);
      } else if (msg.length >= 2 && msg[0] === 0x56 && msg[1] === 0xec) {
        this.replies.wrongHeader++;
        return;
      } else {
        // Spectrum truncates such a reply: the client gets nothing useful.
        this.replies.withoutHeader++;
        return;
      }
    } else if (msg.length >= 2 && msg[0] === 0x56 && msg[1] === 0xec) {
      this.replies.wrongHeader++;
    } else {
      this.replies.withoutHeader++;
    }
    this.front.send(payload, flow.real.port, flow.real.address);
  }

  async close(): Promise<void> {
    const flows = await Promise.all(this.pending.values());
    const all = [this.front, ...flows.map((f) => f.upstream)];
    this.flows.clear();
    this.pending.clear();
    await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** A client socket on `host` (port 0) that sends and collects what comes back. */
export class UdpClient {
  readonly received: Buffer[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg) => {
      this.received.push(msg);
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  static async start(host: string): Promise<UdpClient> {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return new UdpClient(socket);
  }

  get endpoint(): UdpEndpoint {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  send(msg: Buffer | string, to: UdpEndpoint): void {
    this.socket.send(msg, to.port, to.address);
  }

  /** Waits for `count` datagrams in all (bounded by `ms`); returns them as text. */
  async replies(count: number, ms = 5000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received.map((b) => b.toString());
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
