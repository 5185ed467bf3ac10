// Every warning node-toa gives, its code and its text: the one place they are written (callers
// call the function named after the event). An operator must see each once, not once per
// connection: an attacker controls how often a forged option arrives, so the number of distinct
// warnings is bounded too. Each one is also published on the `node-toa:warning` diagnostics
// channel (when someone subscribes).
import { channel } from 'node:diagnostics_channel';
import { errnoName, isPermissionError } from './errno';

const warningChannel = channel('node-toa:warning');

/** What `node-toa:warning` subscribers receive. */
export interface WarningMessage {
  code: string;
  message: string;
}

/** Every node-toa warning goes out here: as a process warning (type NodeToaWarning) and on the channel. */
function emitToaWarning(code: string, message: string): void {
  process.emitWarning(message, { type: 'NodeToaWarning', code });
  if (warningChannel.hasSubscribers) warningChannel.publish({ code, message } satisfies WarningMessage);
}

const MAX_WARNED_PEERS = 16;
const warnedPeers = new Set<string>();
const warnedCodes = new Set<string>();

export function warnUntrustedPeer(peer: string, kind: number): void {
  if (!firstFrom(warnedPeers, peer)) return;
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

function warnOnce(code: string, message: string): void {
  if (warnedCodes.has(code)) return;
  warnedCodes.add(code);
  emitToaWarning(code, message);
}

const warnedAmbiguous = new Set<string>();

export function warnAmbiguous(peer: string, count: number): void {
  if (!firstFrom(warnedAmbiguous, peer)) return;
  emitToaWarning(
    'NODE_TOA_AMBIGUOUS',
    `node-toa: ignored ${count} TCP option addresses in one packet from ${peer}: a proxy sends one, ` +
      `and whether its own is the first or the last depends on the proxy, so none is believed. ` +
      `If you know yours, set multiple: 'first' (LVS, DPVS) or 'last'.`,
  );
}

const warnedProxyPeers = new Set<string>();

// Why the gate closed a connection (core/metrics.ts ProxyRefusedReason), in words.
const PROXY_REFUSED_TEXT = {
  malformed: 'a malformed PROXY protocol header',
  tooLarge: 'a PROXY protocol header larger than maxHeaderSize',
  timeout: 'no complete PROXY protocol header within the timeout',
  missing: 'no PROXY protocol header',
};

/**
 * A trusted peer's connection closed for its PROXY header: said once per peer (bounded).
 * `reason`: the parser's words, when it had some.
 */
export function warnProxyHeader(peer: string, port: number, refused: keyof typeof PROXY_REFUSED_TEXT, reason?: string): void {
  if (!firstFrom(warnedProxyPeers, peer)) return;
  const problem = reason ? `${PROXY_REFUSED_TEXT[refused]} (${reason})` : PROXY_REFUSED_TEXT[refused];
  emitToaWarning(
    'NODE_TOA_PROXY_HEADER',
    `node-toa: closed a connection from ${peer} to port ${port}: ${problem}. Connections from a trusted proxy ` +
      `must start with a PROXY protocol header when proxyProtocol is on; if ${peer} sends none, ` +
      `use proxyProtocol: 'optional' or leave it out of trustProxy (counted in metrics().proxyProtocol).`,
  );
}

/** Once per peer (bounded): a new peer in `warned` is told, a known one or one past the bound is not. */
function firstFrom(warned: Set<string>, peer: string): boolean {
  if (warned.has(peer) || warned.size >= MAX_WARNED_PEERS) return false;
  warned.add(peer);
  return true;
}

// ---- a server's listening socket (server/enable.ts, server/cluster.ts, install/install.ts)

/** setsockopt(TCP_SAVE_SYN) failed on a listening socket (enable(), install()). */
export function warnSaveSynFailed(name: string, err: number): void {
  warnOnce(
    `NODE_TOA_SAVE_SYN_${err}`,
    `node-toa: setsockopt(TCP_SAVE_SYN) failed with ${name}; TOA cannot be read on this server.`,
  );
}

/** A server without a file descriptor because the runtime (Bun, Deno) gives none. */
export function warnNoFdRuntime(runtime: string): void {
  warnOnce(
    'NODE_TOA_NO_FD_RUNTIME',
    `node-toa: under ${runtime} this server's socket has no file descriptor, so TOA cannot be read on it ` +
      "(answers are the peer's); see node-toa/docs/runtimes.md.",
  );
}

/** A server without a listening socket of its own (a cluster worker whose primary did not enableCluster()). */
export function warnNoListeningFd(): void {
  warnOnce(
    'NODE_TOA_NO_LISTENING_FD',
    'node-toa: this server has no listening socket of its own (a node:cluster worker?). ' +
      'Call enableCluster() in the primary, or listen with toa.listen(); see node-toa/docs/cluster.md.',
  );
}

export function warnClusterSaveSynFailed(name: string, err: number): void {
  warnOnce(
    `NODE_TOA_CLUSTER_SAVE_SYN_${err}`,
    `node-toa: enableCluster() could not set TCP_SAVE_SYN on a listening socket of the primary (${name}).`,
  );
}

/** `when`: the moment the listener was found, e.g. "when enableCluster() was called". */
export function warnClusterLate(when: string): void {
  warnOnce(
    'NODE_TOA_CLUSTER_LATE',
    `node-toa: enableCluster() found a listening socket without TCP_SAVE_SYN ${when}; connections ` +
      'accepted on it before had no saved SYN. Call enableCluster() before cluster.fork().',
  );
}

export function warnClusterNoHook(): void {
  warnOnce(
    'NODE_TOA_CLUSTER_NO_HOOK',
    'node-toa: this Node.js version lacks net._createServerHandle or Server.prototype._listen2; enableCluster() ' +
      "sets TCP_SAVE_SYN on the cluster's 'listening' event instead, so SYNs of the first moments may be missed.",
  );
}

export function warnInstallLate(late: number): void {
  warnOnce(
    'NODE_TOA_INSTALL_LATE',
    `node-toa: install() found ${late} listening socket${late === 1 ? '' : 's'} without TCP_SAVE_SYN and set it; ` +
      'connections accepted before had no saved SYN (and their remoteAddress is the peer). Call install() (or use ' +
      'node -r node-toa/preload) before any server listens.',
  );
}

export function warnInstallNoHook(): void {
  warnOnce(
    'NODE_TOA_INSTALL_NO_HOOK',
    'node-toa: this Node.js lacks net._createServerHandle or Server.prototype._listen2, so install() cannot set ' +
      'TCP_SAVE_SYN before listen(2); servers must be started with toa.listen() or toa.enable().',
  );
}

/** install() or the preload without trustProxy. */
export function warnInstallTrustsNoOne(preload: boolean): void {
  warnOnce(
    'NODE_TOA_TRUST_NONE',
    preload
      ? 'node-toa/preload: NODE_TOA_TRUST_PROXY is not set, so no proxy is trusted and socket.remoteAddress stays the peer. ' +
          "Set it to your proxies' addresses, e.g. NODE_TOA_TRUST_PROXY=198.51.100.0/24 (IPs, CIDR ranges, loopback; comma-separated)."
      : "node-toa install(): no trustProxy, so no proxy is trusted and socket.remoteAddress stays the peer. Pass your proxies' addresses, e.g. install({ trustProxy: '198.51.100.0/24' }).",
  );
}

/** A framework integration met a server that was not saving SYNs before its first request. */
export function warnEnabledLate(where: string): void {
  emitToaWarning(
    'NODE_TOA_ENABLED_LATE',
    `node-toa (${where}): the server did not save SYNs until its first request, so connections accepted ` +
      'before this one answer with their peer, not the client. Start it with toa.listen(server, { port }) ' +
      '(or call toa.enable(server) before listen()); see node-toa/docs/integrations.md.',
  );
}

// ---- the ACK tap (tap/open.ts, install/install.ts, frameworks/integration.ts)

export function warnAckUnsupported(): void {
  warnOnce(
    'NODE_TOA_ACK_UNSUPPORTED',
    `node-toa: { ack: true } needs Linux (the sock_ops program or packet sockets), not available on ${process.platform}; ` +
      'only TOA in SYNs is read.',
  );
}

export function warnAckNotTcp(): void {
  warnOnce('NODE_TOA_ACK_NOT_TCP', 'node-toa: { ack: true } applies to TCP servers only; this one listens on a pipe.');
}

/**
 * ack 'auto' found no way to open a tap. `noCapability`: the process lacks CAP_NET_RAW (else
 * `errno` says why); `preload`: the words of NODE_TOA_ACK, else of the `ack` option.
 */
export function warnAckSynOnly(sockops: { errno: number; syscall?: string } | null, packetErrno: number, preload: boolean): void {
  const how = preload ? 'NODE_TOA_ACK=off' : "ack: false";
  const packet = isPermissionError(packetErrno) ? 'this process lacks CAP_NET_RAW' : `a packet socket cannot be opened (${errnoName(packetErrno)})`;
  let kernel = '';
  if (sockops !== null) {
    kernel = isPermissionError(sockops.errno)
      ? ' (and CAP_BPF with CAP_NET_ADMIN for the sock_ops program)'
      : ` (and the sock_ops program did not load: ${sockops.syscall ?? 'bpf'} failed with ${errnoName(sockops.errno)})`;
  }
  const why = `${packet}${kernel}`;
  warnOnce(
    'NODE_TOA_ACK_SYN_ONLY',
    `node-toa: ${why}, so TOA is read from SYNs only; proxies that tag the handshake ACK (Tencent ` +
      `anti-DDoS and CLB, Alibaba Anti-DDoS, DPVS, Huawei) need the ACK tap: grant CAP_NET_RAW (docker run --cap-add NET_RAW), ` +
      `or CAP_BPF and CAP_NET_ADMIN for the cheaper sock_ops program, or set ${how} to say SYNs are enough.`,
  );
}

/** A sock_ops tap whose program never saw its server's connections (their listener is another cgroup's). */
export function warnSockopsUnseen(port: number): void {
  warnOnce(
    'NODE_TOA_SOCKOPS_UNSEEN',
    `node-toa: the sock_ops program of port ${port} does not see its connections: the listening socket was made ` +
      `outside this process's cgroup (a socket handed over by systemd or another process), so the ACK tap reads ` +
      `nothing there. Use packet sockets for it: { ack: { source: 'packet' } } (NODE_TOA_ACK=packet).`,
  );
}

/** install()'s tap of one server did not open: the error's code (ERR_TOA_...) is the warning's. */
export function warnTapFailed(code: string | undefined, message: string): void {
  warnOnce(code ?? 'NODE_TOA_ACK_FAILED', `${message} (the server listens on; TOA is read from SYNs only)`);
}

/** An integration's tap did not open at a request (a request must not fail for it). */
export function warnTapFailedAt(where: string, code: string | undefined, message: string): void {
  emitToaWarning(code ?? 'NODE_TOA_ACK_FAILED', `node-toa (${where}): ${message}`);
}

// ---- UDP (udp/socket.ts, udp/report.ts, udp/uoa.ts)

export function warnUdpTrustsNoOne(): void {
  warnOnce(
    'NODE_TOA_UDP_NO_TRUST',
    'node-toa: a dgram socket reads proxy headers but trustProxy trusts no one, so every datagram is the ' +
      "peer's and headers reach the application as data. Pass trustProxy (enable(socket, { trustProxy }), " +
      'NODE_TOA_TRUST_PROXY) or set it with configure({ trustProxy }).',
  );
}

const warnedDropped = new Set<string>();
const warnedUdpUntrusted = new Set<string>();

/** A datagram dropped for its header: once per peer (bounded). `problem`: the parser's reason. */
export function warnUdpDropped(peer: string, port: number, reason: 'missing' | 'tooLarge' | 'malformed', problem?: string): void {
  if (!firstFrom(warnedDropped, peer)) return;
  const what =
    reason === 'missing'
      ? 'no header on a flow not seen before, where one is required'
      : `${reason === 'tooLarge' ? 'a header too large' : 'a malformed header'}${problem ? ` (${problem})` : ''}`;
  emitToaWarning(
    'NODE_TOA_UDP_HEADER',
    `node-toa: dropped a datagram from ${peer} to port ${port}: ${what}. Further drops from ${peer} are counted in ` +
      "metrics().udp.dropped, not warned. If this proxy sends no header on some flows, use 'optional'.",
  );
}

/** A header-shaped datagram from a peer not trusted: once per peer (bounded). */
export function warnUdpUntrusted(peer: string): void {
  if (!firstFrom(warnedUdpUntrusted, peer)) return;
  emitToaWarning(
    'NODE_TOA_UDP_UNTRUSTED',
    `node-toa: a datagram from ${peer} starts like a proxy header, but ${peer} is not a trusted proxy, so it is ` +
      `delivered as data. If ${peer} is your proxy, add it to trustProxy (e.g. { trustProxy: '${peer}' }).`,
  );
}

/** uoa 'auto': the UOA tap did not open (`message` says which call failed). */
export function warnUoaTapFailed(message: string): void {
  warnOnce('NODE_TOA_UOA_TAP', `${message} (UOA is read from uoa.ko only, if loaded)`);
}

export function warnUoaNone(): void {
  warnOnce(
    'NODE_TOA_UOA_NONE',
    "node-toa: uoa: 'auto' can read neither a packet tap (this process lacks CAP_NET_RAW) nor DPVS's uoa.ko " +
      '(not loaded), so no UOA is read and datagrams are the proxy\'s own. Grant CAP_NET_RAW or load uoa.ko.',
  );
}
