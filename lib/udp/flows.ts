// One socket's flows: what a trusted proxy's header said about the client behind one of its
// (address, port) ends, so producers that send the header on a flow's first datagram only (DPVS,
// Cloudflare's PROXY v2) keep their client on every later one, and replies to that client go back
// through the proxy. The socket is the flow's local end. Bounded in count (the least recently
// seen goes first) and in idle time (a sweep timer, unref'd, runs only while there are flows).
//
// Looked up per datagram by address, then port: the address string is the one Node made for
// rinfo (its hash is computed once, by the trust check before), the port a small integer, so no
// key string is built per datagram.
import type { Endpoint } from '../core/types';
import { clockRelease, clockUse } from './clock';

export type UdpSource = 'spp' | 'proxy-protocol' | 'uoa' | 'peer';

export interface Flow {
  /** `address port` of the proxy end: the recency order's key. */
  readonly key: string;
  readonly proxy: Endpoint;
  client: Endpoint;
  source: Exclude<UdpSource, 'peer'>;
  /** The SPP header to put before replies (the last one received on the flow). */
  spp: Buffer | undefined;
  /** Time of the last datagram. */
  seen: number;
  /** When the flow was last moved to the end of the recency order. */
  moved: number;
}

type Index = Map<string, Map<number, Flow>>;

function find(index: Index, address: string, port: number): Flow | undefined {
  return index.get(address)?.get(port);
}

function put(index: Index, address: string, port: number, flow: Flow): void {
  let ports = index.get(address);
  if (ports === undefined) index.set(address, (ports = new Map()));
  ports.set(port, flow);
}

/** Removes the entry of (address, port) when it is `flow`. */
function drop(index: Index, address: string, port: number, flow: Flow): void {
  const ports = index.get(address);
  if (ports === undefined || ports.get(port) !== flow) return;
  ports.delete(port);
  if (ports.size === 0) index.delete(address);
}

export class FlowTable {
  // Insertion order is kept as recency order: a flow seen again is moved to the end (at most
  // once per refresh interval), so the first entry is the one to evict.
  private readonly order = new Map<string, Flow>();
  // proxy end -> its flow.
  private readonly ends: Index = new Map();
  // client -> the flow that last carried it: where replies to it go.
  private readonly clients: Index = new Map();
  private timer: NodeJS.Timeout | undefined;
  private readonly refreshMs: number;
  /** Whether the last set() made a new flow or changed a flow's client or source. */
  changed = false;

  constructor(
    readonly capacity: number,
    readonly maxAgeMs: number,
  ) {
    this.refreshMs = Math.max(1, maxAgeMs >> 3);
  }

  get size(): number {
    return this.order.size;
  }

  /** The live flow of a proxy end, its last-seen time refreshed; undefined when none or expired. */
  get(address: string, port: number, now: number): Flow | undefined {
    const flow = find(this.ends, address, port);
    if (flow === undefined) return undefined;
    if (now - flow.seen > this.maxAgeMs) {
      this.remove(flow);
      return undefined;
    }
    flow.seen = now;
    if (now - flow.moved > this.refreshMs) this.touch(flow, now);
    return flow;
  }

  /** The flow that last carried the client (address, port), for a reply; undefined when none or expired. */
  byClient(address: string, port: number, now: number): Flow | undefined {
    const flow = find(this.clients, address, port);
    if (flow === undefined || now - flow.seen > this.maxAgeMs) return undefined;
    return flow;
  }

  /** What a header said on the proxy end `proxy`: a new flow, or the known one updated (see `changed`). */
  set(proxy: Endpoint, client: Endpoint, source: Flow['source'], spp: Buffer | undefined, now: number): Flow {
    let flow = find(this.ends, proxy.address, proxy.port);
    if (flow !== undefined && flow.source === source && flow.client.port === client.port && flow.client.address === client.address) {
      // The common case: the header says again what it said before.
      this.changed = false;
      flow.spp = spp;
      flow.seen = now;
      if (now - flow.moved > this.refreshMs) this.touch(flow, now);
      return flow;
    }
    this.changed = true;
    if (flow === undefined) {
      if (this.order.size >= this.capacity) this.evictOldest();
      flow = { key: `${proxy.address} ${proxy.port}`, proxy, client, source, spp, seen: now, moved: now };
      this.order.set(flow.key, flow);
      put(this.ends, proxy.address, proxy.port, flow);
      this.arm();
    } else {
      // The same proxy end may carry another client once the proxy reused its port.
      drop(this.clients, flow.client.address, flow.client.port, flow);
      flow.client = client;
      flow.source = source;
      flow.spp = spp;
      flow.seen = now;
      if (now - flow.moved > this.refreshMs) this.touch(flow, now);
    }
    put(this.clients, client.address, client.port, flow);
    return flow;
  }

  /** Forgets every flow (the socket closed). */
  clear(): void {
    this.order.clear();
    this.ends.clear();
    this.clients.clear();
    this.disarm();
  }

  /** Drops the flows idle longer than maxAge. */
  sweep(now: number): void {
    for (const flow of this.order.values()) {
      if (now - flow.seen > this.maxAgeMs) this.remove(flow);
    }
    if (this.order.size === 0) this.disarm();
  }

  private touch(flow: Flow, now: number): void {
    this.order.delete(flow.key);
    this.order.set(flow.key, flow);
    flow.moved = now;
  }

  private remove(flow: Flow): void {
    this.order.delete(flow.key);
    drop(this.ends, flow.proxy.address, flow.proxy.port, flow);
    drop(this.clients, flow.client.address, flow.client.port, flow);
  }

  private evictOldest(): void {
    const first = this.order.values().next();
    if (first.done !== true) this.remove(first.value);
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.sweep(Date.now()), Math.max(50, this.maxAgeMs >> 1));
    this.timer.unref();
    clockUse();
  }

  private disarm(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    clockRelease();
  }
}
