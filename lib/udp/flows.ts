// One socket's flows: what a trusted proxy's header said about the client behind one of its
// (address, port) pairs, so producers that send the header on a flow's first datagram only (DPVS,
// Cloudflare's PROXY v2) keep their client on every later one, and replies to that client go back
// through the proxy. The socket is the flow's local end. Bounded in count (the least recently
// seen goes first) and in idle time (a sweep timer, unref'd, runs only while there are flows).
import type { Endpoint } from '../core/types';
import { clockRelease, clockUse } from './clock';

export type UdpSource = 'spp' | 'proxy-protocol' | 'uoa' | 'peer';

export interface Flow {
  /** `address port` of the proxy end: the table's key. */
  readonly key: string;
  readonly proxy: Endpoint;
  client: Endpoint;
  /** `address port` of the client: the reply index's key. */
  clientKey: string;
  source: Exclude<UdpSource, 'peer'>;
  /** The SPP header to put before replies (the last one received on the flow). */
  spp: Buffer | undefined;
  /** Date.now() of the last datagram. */
  seen: number;
  /** When the flow was last moved to the end of the recency order. */
  moved: number;
}

export function flowKey(address: string, port: number): string {
  return `${address} ${port}`;
}

export class FlowTable {
  // Insertion order is kept as recency order: a flow seen again is moved to the end (at most
  // once per refresh interval), so the first entry is the one to evict.
  private readonly flows = new Map<string, Flow>();
  // client -> the flow that last carried it: where replies to it go.
  private readonly byClient = new Map<string, Flow>();
  private timer: NodeJS.Timeout | undefined;
  private readonly refreshMs: number;

  constructor(
    readonly capacity: number,
    readonly maxAgeMs: number,
  ) {
    this.refreshMs = Math.max(1, maxAgeMs >> 3);
  }

  get size(): number {
    return this.flows.size;
  }

  /** The live flow of a proxy end, its last-seen time refreshed; undefined when none or expired. */
  get(key: string, now: number): Flow | undefined {
    const flow = this.flows.get(key);
    if (flow === undefined) return undefined;
    if (now - flow.seen > this.maxAgeMs) {
      this.remove(flow);
      return undefined;
    }
    flow.seen = now;
    if (now - flow.moved > this.refreshMs) this.touch(flow, now);
    return flow;
  }

  /** The flow that last carried `client` (`address port`), for a reply; undefined when none or expired. */
  byClientKey(clientKey: string, now: number): Flow | undefined {
    const flow = this.byClient.get(clientKey);
    if (flow === undefined || now - flow.seen > this.maxAgeMs) return undefined;
    return flow;
  }

  /** What a header said on a proxy end: a new flow, or the known one updated. Returns it and whether it is new. */
  set(proxy: Endpoint, key: string, client: Endpoint, source: Flow['source'], spp: Buffer | undefined, now: number): [Flow, boolean] {
    let flow = this.flows.get(key);
    if (flow !== undefined && flow.source === source && flow.client.port === client.port && flow.client.address === client.address) {
      // The common case: the header says again what it said before.
      flow.spp = spp;
      flow.seen = now;
      if (now - flow.moved > this.refreshMs) this.touch(flow, now);
      return [flow, false];
    }
    const clientKey = flowKey(client.address, client.port);
    let fresh = false;
    if (flow === undefined) {
      if (this.flows.size >= this.capacity) this.evictOldest();
      flow = { key, proxy, client, clientKey, source, spp, seen: now, moved: now };
      this.flows.set(key, flow);
      fresh = true;
      this.arm();
    } else {
      // The same proxy end may carry another client once the proxy reused its port.
      fresh = flow.clientKey !== clientKey || flow.source !== source;
      if (flow.clientKey !== clientKey && this.byClient.get(flow.clientKey) === flow) this.byClient.delete(flow.clientKey);
      flow.client = client;
      flow.clientKey = clientKey;
      flow.source = source;
      flow.spp = spp;
      flow.seen = now;
      if (now - flow.moved > this.refreshMs) this.touch(flow, now);
    }
    this.byClient.set(clientKey, flow);
    return [flow, fresh];
  }

  /** Forgets every flow (the socket closed). */
  clear(): void {
    this.flows.clear();
    this.byClient.clear();
    this.disarm();
  }

  /** Drops the flows idle longer than maxAge. */
  sweep(now: number): void {
    for (const flow of this.flows.values()) {
      if (now - flow.seen > this.maxAgeMs) this.remove(flow);
    }
    if (this.flows.size === 0) this.disarm();
  }

  private touch(flow: Flow, now: number): void {
    this.flows.delete(flow.key);
    this.flows.set(flow.key, flow);
    flow.moved = now;
  }

  private remove(flow: Flow): void {
    this.flows.delete(flow.key);
    if (this.byClient.get(flow.clientKey) === flow) this.byClient.delete(flow.clientKey);
  }

  private evictOldest(): void {
    const first = this.flows.values().next();
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
