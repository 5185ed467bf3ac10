// enableCluster(): under node:cluster the primary owns the listening sockets. Round-robin (the
// default on Linux): the primary listens, accepts and passes each connection to a worker, whose
// server has no listening fd at all. SCHED_NONE: the primary binds and sends the socket to the
// workers, which listen on it. TCP_SAVE_SYN belongs to the listening socket, so it is set in the
// primary; each worker then reads the saved SYN of the connections it gets, as usual.
import cluster from 'node:cluster';
import { readdirSync } from 'node:fs';
import { binding, savedSynAvailable } from '../addon/binding';
import { warnClusterLate, warnClusterNoHook, warnClusterSaveSynFailed, warnSavedSynUnsupported } from '../util/warnings';
import { saveSynOn, useListenHook, type ListenHookUser } from './listen-hook';

/** Set in the primary (enableCluster(), install()): cluster.fork() passes it to the workers. */
export const CLUSTER_MARK = 'NODE_TOA_CLUSTER';

let enabled = false;

const clusterUser: ListenHookUser = {
  saveSynFailed(name, err) {
    warnClusterSaveSynFailed(name, err);
  },
};

/** Every TCP socket of this process in the listening state (its fds, from /proc/self/fd). */
export function listeningFds(): number[] {
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
    saveSynOn(fd, clusterUser);
    warnClusterLate(when);
  }
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
  process.env[CLUSTER_MARK] = '1';
  if (useListenHook(clusterUser) === null) warnClusterNoHook();
  sweep('when enableCluster() was called');
  cluster.on('listening', () => sweep("on the cluster's 'listening' event"));
}

/**
 * In a node:cluster worker: whether the primary called enableCluster(), so that the listening
 * socket, which the primary owns, saves SYNs. False in the primary and outside a cluster.
 */
export function clusterPrimaryEnabled(): boolean {
  return cluster.isWorker && process.env[CLUSTER_MARK] === '1';
}
