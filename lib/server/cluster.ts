// enableCluster(): under node:cluster the primary owns the listening sockets. Round-robin (the
// default on Linux): the primary listens, accepts and passes each connection to a worker, whose
// server has no listening fd at all. SCHED_NONE: the primary binds and sends the socket to the
// workers, which listen on it. TCP_SAVE_SYN belongs to the listening socket, so it is set in the
// primary; each worker then reads the saved SYN of the connections it gets, as usual.
import cluster from 'node:cluster';
import { readdirSync } from 'node:fs';
import net = require('node:net');
import { binding, savedSynAvailable } from '../addon/binding';
import { errnoName } from '../util/errno';
import { warnOnce, warnSavedSynUnsupported } from '../util/warnings';

/** Set by enableCluster() in the primary; cluster.fork() passes the environment on to workers. */
const ENV_MARK = 'NODE_TOA_CLUSTER';

// Node's internals used here are the ones node:cluster itself relies on: `_createServerHandle`
// (exported for cluster's SCHED_NONE handles) and `Server.prototype._listen2` (kept by Node as
// a "legacy alias ... to avoid breaking code that wraps this method").
type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => { fd?: number } | number;
type Listen2 = (
  this: net.Server & { _handle?: object | null },
  address: string | null,
  port: number,
  addressType: number,
  backlog: number,
  fd?: number,
  flags?: number,
) => void;
interface NetInternals {
  _createServerHandle?: CreateServerHandle;
  Server: { prototype: { _listen2?: Listen2 } };
}

// Not TCP sockets (a unix socket of the primary): nothing to do, nothing to say.
const NOT_TCP = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOPROTOOPT', 'ENOTSOCK', 'EBADF']);

let enabled = false;

function saveSyn(fd: number): void {
  if (binding === null) return;
  const err = binding.setSaveSyn(fd, true);
  if (err !== 0 && !NOT_TCP.has(errnoName(err))) {
    warnOnce(
      `NODE_TOA_CLUSTER_SAVE_SYN_${err}`,
      `node-toa: enableCluster() could not set TCP_SAVE_SYN on a listening socket of the primary (${errnoName(err)}).`,
    );
  }
}

/** Every TCP socket of this process in the listening state (its fds, from /proc/self/fd). */
function listeningFds(): number[] {
  if (binding === null) return [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const fds: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (Number.isInteger(fd) && binding.isTcpListener(fd) === true) fds.push(fd);
  }
  return fds;
}

/** Sets TCP_SAVE_SYN on listeners that do not have it; says so if they took connections already. */
function sweep(when: string): void {
  if (binding === null) return;
  for (const fd of listeningFds()) {
    if (binding.getSaveSyn(fd) !== 0) continue;
    saveSyn(fd);
    warnOnce(
      'NODE_TOA_CLUSTER_LATE',
      `node-toa: enableCluster() found a listening socket without TCP_SAVE_SYN ${when}; connections ` +
        'accepted on it before had no saved SYN. Call enableCluster() before cluster.fork().',
    );
  }
}

/**
 * Makes the primary's listening sockets save SYNs before they listen: the handle is bound
 * through `_createServerHandle` (hooked: TCP_SAVE_SYN right after bind(2)) and only then does
 * Node's own `_listen2` call listen(2) on it.
 */
function hookListen(internals: NetInternals): boolean {
  const create = internals._createServerHandle;
  const proto = internals.Server.prototype;
  const listen2 = proto._listen2;
  if (typeof create !== 'function' || typeof listen2 !== 'function') return false;

  const createWithSaveSyn: CreateServerHandle = function createServerHandleSavingSyn(...args) {
    const handle = create(...args);
    if (typeof handle === 'object' && handle !== null && typeof handle.fd === 'number' && handle.fd >= 0) {
      saveSyn(handle.fd);
    }
    return handle;
  };
  internals._createServerHandle = createWithSaveSyn;

  proto._listen2 = function listen2SavingSyn(address, port, addressType, backlog, fd, flags) {
    // Only a TCP port Node would bind itself: not a handle it was given, an fd, or a pipe.
    if (this._handle == null && typeof fd !== 'number' && typeof port === 'number' && port >= 0) {
      // As Node's setupListenHandle: no address means '::', or '0.0.0.0' where IPv6 fails.
      let handle: ReturnType<CreateServerHandle>;
      let boundAddress = address;
      let boundType = addressType;
      if (!address) {
        handle = createWithSaveSyn('::', port, 6, fd, flags);
        boundAddress = '::';
        boundType = 6;
        if (typeof handle === 'number') {
          handle = createWithSaveSyn('0.0.0.0', port, 4, fd, flags);
          boundAddress = '0.0.0.0';
          boundType = 4;
        }
      } else {
        handle = createWithSaveSyn(address, port, addressType, fd, flags);
      }
      // On failure Node tries again itself below and reports the error its usual way.
      if (typeof handle === 'object') {
        this._handle = handle;
        return listen2.call(this, boundAddress, port, boundType, backlog, fd, flags);
      }
    }
    return listen2.call(this, address, port, addressType, backlog, fd, flags);
  };
  return true;
}

/**
 * Call once in the node:cluster primary, before `cluster.fork()`. From then on every TCP socket
 * the primary listens on (the ones it opens for its workers included, in round-robin and in
 * SCHED_NONE mode) has TCP_SAVE_SYN before listen(2), and workers get real client addresses
 * from `realRemoteAddress()` and the framework integrations. Listeners the primary already
 * has get it too (with a warning: their earlier connections had no saved SYN).
 *
 * Where the primary is not yours (pm2's cluster mode), listen in each worker with
 * `toa.listen(server, { port, reusePort: true })` instead.
 *
 * @throws Error when called in a worker.
 */
export function enableCluster(): void {
  if (!cluster.isPrimary) {
    throw new Error(
      'enableCluster() must be called in the cluster primary (cluster.isPrimary), before cluster.fork(); ' +
        'workers need no call. Where the primary is not yours (pm2), use toa.listen(server, { port, reusePort: true }) in each worker.',
    );
  }
  if (enabled) return;
  if (!savedSynAvailable || binding === null) {
    warnSavedSynUnsupported();
    return;
  }
  enabled = true;
  process.env[ENV_MARK] = '1';
  // The module object itself (not an ES namespace copy): cluster reads its properties at call time.
  if (!hookListen(net as unknown as NetInternals)) {
    warnOnce(
      'NODE_TOA_CLUSTER_NO_HOOK',
      'node-toa: this Node.js version lacks net._createServerHandle or Server.prototype._listen2; enableCluster() ' +
        "sets TCP_SAVE_SYN on the cluster's 'listening' event instead, so SYNs of the first moments may be missed.",
    );
  }
  sweep('when enableCluster() was called');
  cluster.on('listening', () => sweep("on the cluster's 'listening' event"));
}

/**
 * In a node:cluster worker: whether the primary called enableCluster(), so that the listening
 * socket, which the primary owns, saves SYNs. False in the primary and outside a cluster.
 */
export function clusterPrimaryEnabled(): boolean {
  return cluster.isWorker && process.env[ENV_MARK] === '1';
}
