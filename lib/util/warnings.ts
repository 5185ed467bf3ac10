// Warnings an operator must see once, not once per connection: an attacker controls how often
// a forged option arrives, so the number of distinct warnings is bounded too. Each one is also
// published on the `node-toa:warning` diagnostics channel (when someone subscribes).
import { channel } from 'node:diagnostics_channel';

const warningChannel = channel('node-toa:warning');

/** What `node-toa:warning` subscribers receive. */
export interface WarningMessage {
  code: string;
  message: string;
}

/** Every node-toa warning goes out here: as a process warning (type NodeToaWarning) and on the channel. */
export function emitToaWarning(code: string, message: string): void {
  process.emitWarning(message, { type: 'NodeToaWarning', code });
  if (warningChannel.hasSubscribers) warningChannel.publish({ code, message } satisfies WarningMessage);
}

const MAX_WARNED_PEERS = 16;
const warnedPeers = new Set<string>();
const warnedCodes = new Set<string>();

export function warnUntrustedPeer(peer: string, kind: number): void {
  if (warnedPeers.has(peer) || warnedPeers.size >= MAX_WARNED_PEERS) return;
  warnedPeers.add(peer);
  emitToaWarning(
    'NODE_TOA_UNTRUSTED_PEER',
    `node-toa: ignored a TCP option address (kind ${kind}) from ${peer}, which is not a trusted ` +
      `proxy. If ${peer} is your load balancer or anti-DDoS proxy, add it to trustProxy ` +
      `(e.g. { trustProxy: '${peer}' } or its CIDR range).`,
  );
}

/** Saved SYNs cannot be read here (not Linux, or no addon): said once, wherever it is noticed. */
export function warnSavedSynUnsupported(): void {
  warnOnce(
    'NODE_TOA_UNSUPPORTED',
    `node-toa: saved SYNs are not available on ${process.platform}; realRemoteAddress() answers with the socket's own peer.`,
  );
}

export function warnProxyTrustsNoOne(port: number): void {
  warnOnce(
    'NODE_TOA_PROXY_NO_TRUST',
    `node-toa: proxyProtocol is on (port ${port}) but trustProxy trusts no one, so no PROXY protocol header is ` +
      `read and each reaches the application as data. Pass trustProxy with proxyProtocol (enable(), listen(), ` +
      `install(), the Fastify plugin) or set it with configure({ trustProxy }).`,
  );
}

export function warnOnce(code: string, message: string): void {
  if (warnedCodes.has(code)) return;
  warnedCodes.add(code);
  emitToaWarning(code, message);
}

const warnedAmbiguous = new Set<string>();

export function warnAmbiguous(peer: string, count: number): void {
  if (warnedAmbiguous.has(peer) || warnedAmbiguous.size >= MAX_WARNED_PEERS) return;
  warnedAmbiguous.add(peer);
  emitToaWarning(
    'NODE_TOA_AMBIGUOUS',
    `node-toa: ignored ${count} TCP option addresses in one packet from ${peer}: a proxy sends one, ` +
      `and whether its own is the first or the last depends on the proxy, so none is believed. ` +
      `If you know yours, set multiple: 'first' (LVS, DPVS) or 'last'.`,
  );
}

const warnedProxyPeers = new Set<string>();

/** A trusted peer's connection closed for its PROXY header: said once per peer (bounded). */
export function warnProxyHeader(peer: string, port: number, problem: string): void {
  if (warnedProxyPeers.has(peer) || warnedProxyPeers.size >= MAX_WARNED_PEERS) return;
  warnedProxyPeers.add(peer);
  emitToaWarning(
    'NODE_TOA_PROXY_HEADER',
    `node-toa: closed a connection from ${peer} to port ${port}: ${problem}. Connections from a trusted proxy ` +
      `must start with a PROXY protocol header when proxyProtocol is on; if ${peer} sends none, ` +
      `use proxyProtocol: 'optional' or leave it out of trustProxy (counted in metrics().proxyProtocol).`,
  );
}
