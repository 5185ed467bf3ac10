// One datagram, from the socket's 'message' event to what its listeners get: trust first (from
// anyone else the bytes are data), then the header (SPP or PROXY v2: the client, a new or
// updated flow, the header taken off), else the flow's client, else UOA, else the peer's own
// (optional) or nothing (required). Malformed and oversized headers drop that datagram only.
import type { RemoteInfo } from 'node:dgram';
import { defaultTrust } from './default-trust';
import type { Endpoint, Family } from '../core/types';
import { now as clockNow } from './clock';
import type { Flow, FlowTable } from './flows';
import { DGRAM, parseDgram, recordedClient, recordedLength, recordedReason } from './header';
import type { CompiledUdp } from './options';
import type { UdpAnswer, UdpReport } from './report';

/** What a UOA reader found for a proxy end: the client, or null. */
export interface UoaLookup {
  /**
   * The client the proxy end's newest UOA named since the last call (consumed), or null. `known`:
   * the flow is known already; `empty`: the datagram has no payload.
   */
  fresh(peer: Endpoint, localPort: number, known: boolean, empty: boolean): Endpoint | null;
  close(): void;
}

/** The rinfo listeners receive: Node's, with the client's address and where it came from. */
export interface UdpRemoteInfo extends RemoteInfo {
  source: UdpAnswer['source'];
  proxy?: Endpoint;
}

export interface ReceiveState {
  options: CompiledUdp;
  table: FlowTable;
  report: UdpReport;
  uoa: UoaLookup | null;
}

const SPP_0 = 0x56;
const SPP_1 = 0xec;
const V2_0 = 0x0d;
const V2_1 = 0x0a;

// Whether the first bytes can start an SPP or a v2 header: only then is the parser called.
function maybeHeader(msg: Buffer): boolean {
  if (msg.length < 2) return false;
  const a = msg[0];
  const b = msg[1];
  return (a === SPP_0 && b === SPP_1) || (a === V2_0 && b === V2_1);
}

// A JS loop beats a binding call (Buffer.equals) for 38 bytes.
function sameBytes(a: Buffer, b: Buffer, length: number): boolean {
  if (a.length !== length) return false;
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function peerOf(rinfo: RemoteInfo): Endpoint {
  return Object.freeze({ address: rinfo.address, port: rinfo.port, family: rinfo.family as Family });
}

function deliverAs(rinfo: UdpRemoteInfo, flow: Flow, size: number): void {
  const c = flow.client;
  rinfo.proxy = flow.proxy;
  rinfo.address = c.address;
  rinfo.port = c.port;
  rinfo.family = c.family;
  rinfo.size = size;
  rinfo.source = flow.source;
}

function answerOf(flow: Flow): UdpAnswer {
  return { address: flow.client.address, port: flow.client.port, family: flow.client.family, source: flow.source, proxy: flow.proxy };
}

/**
 * The payload to give the socket's listeners (rinfo rewritten in place), or null when the
 * datagram is dropped or consumed.
 */
export function receive(state: ReceiveState, msg: Buffer, info: RemoteInfo): Buffer | null {
  const rinfo = info as UdpRemoteInfo;
  const o = state.options;
  const peer = rinfo.address;
  const trust = o.trust ?? defaultTrust();
  if (!trust(peer)) {
    if (o.formats !== 0 && maybeHeader(msg) && parseDgram(msg, o.formats, o.maxHeaderSize) !== DGRAM.none) {
      state.report.refused('untrusted', peerOf(rinfo));
    }
    rinfo.source = 'peer';
    state.report.datagram('peer');
    return msg;
  }
  const now = clockNow();
  const kind = o.formats !== 0 && maybeHeader(msg) ? parseDgram(msg, o.formats, o.maxHeaderSize) : DGRAM.none;
  const port = rinfo.port;
  switch (kind) {
    case DGRAM.spp:
    case DGRAM.proxy: {
      const length = recordedLength();
      const client = recordedClient();
      const known = state.table.get(peer, port, now);
      let spp: Buffer | undefined;
      if (kind === DGRAM.spp) {
        // The header replies must carry: the last one received (copied once per change).
        spp = known?.spp !== undefined && sameBytes(known.spp, msg, length) ? known.spp : Buffer.from(msg.subarray(0, length));
      }
      const flow = state.table.set(known?.proxy ?? peerOf(rinfo), client, kind === DGRAM.spp ? 'spp' : 'proxy-protocol', spp, now);
      if (state.table.changed) state.report.flow(answerOf(flow));
      const payload = msg.subarray(length);
      deliverAs(rinfo, flow, payload.length);
      state.report.datagram(flow.source);
      return payload;
    }
    case DGRAM.proxyLocal: {
      // A health check, or a header naming no client: the proxy's own datagram, header removed.
      const payload = msg.subarray(recordedLength());
      rinfo.size = payload.length;
      rinfo.source = 'peer';
      state.report.datagram('peer');
      return payload;
    }
    case DGRAM.malformed:
    case DGRAM.tooLarge:
      state.report.refused(kind === DGRAM.malformed ? 'malformed' : 'tooLarge', peerOf(rinfo), recordedReason());
      return null;
    default:
      break;
  }
  let flow = state.table.get(peer, port, now);
  if (state.uoa !== null) {
    const proxy = flow?.proxy ?? peerOf(rinfo);
    const client = state.uoa.fresh(proxy, state.report.localPort(), flow !== undefined, msg.length === 0);
    if (client !== null) {
      flow = state.table.set(proxy, client, 'uoa', undefined, now);
      if (state.table.changed) state.report.flow(answerOf(flow));
      // DPVS sends the option alone in an empty datagram when it does not fit: not the app's.
      if (msg.length === 0) {
        state.report.consumed();
        return null;
      }
    }
  }
  if (flow !== undefined) {
    deliverAs(rinfo, flow, msg.length);
    state.report.datagram(flow.source);
    return msg;
  }
  if (o.required) {
    state.report.refused('missing', peerOf(rinfo));
    return null;
  }
  rinfo.source = 'peer';
  state.report.datagram('peer');
  return msg;
}
