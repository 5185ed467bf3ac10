// Warnings an operator must see once, not once per connection: an attacker controls how often
// a forged option arrives, so the number of distinct warnings is bounded too.
const MAX_WARNED_PEERS = 16;
const warnedPeers = new Set<string>();
const warnedCodes = new Set<string>();

export function warnUntrustedPeer(peer: string, kind: number): void {
  if (warnedPeers.has(peer) || warnedPeers.size >= MAX_WARNED_PEERS) return;
  warnedPeers.add(peer);
  process.emitWarning(
    `node-toa: ignored a TCP option address (kind ${kind}) from ${peer}, which is not a trusted ` +
      `proxy. If ${peer} is your load balancer or anti-DDoS proxy, add it to trustProxy ` +
      `(e.g. { trustProxy: '${peer}' } or its CIDR range).`,
    { type: 'NodeToaWarning', code: 'NODE_TOA_UNTRUSTED_PEER' },
  );
}

export function warnOnce(code: string, message: string): void {
  if (warnedCodes.has(code)) return;
  warnedCodes.add(code);
  process.emitWarning(message, { type: 'NodeToaWarning', code });
}
