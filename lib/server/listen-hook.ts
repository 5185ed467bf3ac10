// TCP_SAVE_SYN on every TCP server of the process before listen(2), by wrapping the two functions
// Node's own listen and node:cluster go through: `net._createServerHandle` (exported for cluster's
// SCHED_NONE handles: bind) and `Server.prototype._listen2` (kept by Node as a "legacy alias ... to
// avoid breaking code that wraps this method": bind, then listen). Used by enableCluster() (for
// good) and install() (undone by its undo function); the wrappers are put in once, for every user.
import net = require('node:net');
import { binding } from '../addon/binding';
import { errnoName } from '../util/errno';
import type { HandleLike } from '../util/node-socket';

type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => { fd?: number } | number;
/** Node's `Server.prototype._listen2`: listen(2) on `_handle`, binding one first when there is none. */
export type Listen2 = (
  this: ServerInternals,
  address: string | null,
  port: number,
  addressType: number,
  backlog: number,
  fd?: number,
  flags?: number,
) => void;
/** A server as Node's internals see it: its handle once bound, and `_listen2`. */
export type ServerInternals = net.Server & { _handle?: HandleLike | null; _listen2: Listen2 };
interface NetInternals {
  _createServerHandle?: CreateServerHandle;
  Server: { prototype: { _listen2?: Listen2 } };
}

/** What a user of the hook is told. */
export interface ListenHookUser {
  /** setsockopt(TCP_SAVE_SYN) failed on a TCP listening socket (not for pipes). */
  saveSynFailed?(errnoName: string, errno: number): void;
  /**
   * A server is about to listen(2) on a bound handle (one Node made, or one it was given): its
   * address() works, no connection can arrive yet. `bound: false` when Node creates the handle
   * from a given fd inside listen (the user then waits for 'listening').
   */
  beforeListen?(server: net.Server, bound: boolean): void;
}

// Not TCP sockets (a pipe, a unix socket): nothing to do, nothing to say.
const NOT_TCP = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOPROTOOPT', 'ENOTSOCK', 'EBADF']);

const users = new Set<ListenHookUser>();
let originals: { create: CreateServerHandle; listen2: Listen2 } | null = null;
let wrappers: { create: CreateServerHandle; listen2: Listen2 } | null = null;

/**
 * Sets TCP_SAVE_SYN on `fd`; tells `user` (or, from the wrappers, every user) when a TCP socket
 * refused it. Pipes and other non-TCP sockets are passed over in silence.
 */
export function saveSynOn(fd: number, user?: ListenHookUser): void {
  if (binding === null) return;
  const err = binding.setSaveSyn(fd, true);
  if (err === 0) return;
  const name = errnoName(err);
  if (NOT_TCP.has(name)) return;
  if (user !== undefined) user.saveSynFailed?.(name, err);
  else for (const u of users) u.saveSynFailed?.(name, err);
}

// From the wrappers: only while someone uses the hook (wrappers may stay in place, idle).
function hookSave(fd: number): void {
  if (users.size !== 0) saveSynOn(fd);
}

function handleFd(handle: unknown): number {
  const fd = typeof handle === 'object' && handle !== null ? (handle as { fd?: unknown }).fd : undefined;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

function wrap(internals: NetInternals, create: CreateServerHandle, listen2: Listen2): void {
  const createWithSaveSyn: CreateServerHandle = function createServerHandleSavingSyn(...args) {
    const handle = create(...args);
    const fd = handleFd(handle);
    if (fd >= 0) hookSave(fd);
    return handle;
  };

  const before = (server: net.Server, bound: boolean) => {
    for (const user of users) user.beforeListen?.(server, bound);
  };
  const listen2SavingSyn: Listen2 = function listen2SavingSyn(address, port, addressType, backlog, fd, flags) {
    if (this._handle != null) {
      // A handle it was given (server.listen(handle), a cluster SCHED_NONE handle bound by the
      // primary, a round-robin worker's stand-in): before listen(2) if it only was bound, else as
      // early as can be.
      const own = handleFd(this._handle);
      if (own >= 0) hookSave(own);
      before(this, true);
      return listen2.call(this, address, port, addressType, backlog, fd, flags);
    }
    if (typeof fd === 'number' && fd >= 0) {
      // server.listen({ fd }): the number is a socket already; Node listens on it below.
      hookSave(fd);
      before(this, false);
      return listen2.call(this, address, port, addressType, backlog, fd, flags);
    }
    // A TCP port Node would bind itself (not a pipe: those come with port -1).
    if (typeof port === 'number' && port >= 0) {
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
        before(this, true);
        return listen2.call(this, boundAddress, port, boundType, backlog, fd, flags);
      }
    }
    return listen2.call(this, address, port, addressType, backlog, fd, flags);
  };

  originals = { create, listen2 };
  wrappers = { create: createWithSaveSyn, listen2: listen2SavingSyn };
  internals._createServerHandle = createWithSaveSyn;
  internals.Server.prototype._listen2 = listen2SavingSyn;
}

function unwrap(internals: NetInternals): void {
  if (originals === null || wrappers === null) return;
  // Put the originals back only where nobody wrapped ours since; else ours stay, idle (no users).
  if (internals._createServerHandle === wrappers.create) internals._createServerHandle = originals.create;
  if (internals.Server.prototype._listen2 === wrappers.listen2) internals.Server.prototype._listen2 = originals.listen2;
  if (internals._createServerHandle === originals.create && internals.Server.prototype._listen2 === originals.listen2) {
    originals = null;
    wrappers = null;
  }
}

/**
 * Makes every TCP socket the process listens on from now on save SYNs before listen(2), and tells
 * `user` about it. Returns the function that removes this user (the wrappers go when the last one
 * does), or null where this Node.js lacks the internals (nothing was changed).
 */
export function useListenHook(user: ListenHookUser): (() => void) | null {
  // The module object itself (not an ES namespace copy): cluster reads its properties at call time.
  const internals = net as unknown as NetInternals;
  if (wrappers === null) {
    const create = internals._createServerHandle;
    const listen2 = internals.Server.prototype._listen2;
    if (typeof create !== 'function' || typeof listen2 !== 'function') return null;
    wrap(internals, create, listen2);
  }
  users.add(user);
  let used = true;
  return () => {
    if (!used) return;
    used = false;
    users.delete(user);
    if (users.size === 0) unwrap(internals);
  };
}
