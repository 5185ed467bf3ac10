// jest gives each test file a copy of `process` whose 'exit' never fires; the real one, reachable
// through vm.runInThisContext, does. The harnesses hang their last-resort cleanup on it.
import * as vm from 'vm';

export function realProcess(): NodeJS.Process {
  try {
    const p = vm.runInThisContext('process') as NodeJS.Process;
    if (p && typeof p.on === 'function') return p;
  } catch {
    /* fall through */
  }
  return process;
}

/**
 * A set, one per real process and `key` (shared by every test file's copy of a harness module),
 * whose members are closed with closeSync() when the real process exits: the last-resort cleanup.
 */
export function closedAtExit<T extends { closeSync(): void }>(key: string): Set<T> {
  const real = realProcess() as NodeJS.Process & { [key: symbol]: Set<T> | undefined };
  const id = Symbol.for(key);
  const existing = real[id];
  if (existing) return existing;
  const open = new Set<T>();
  real[id] = open;
  real.on('exit', () => {
    for (const member of [...open]) member.closeSync();
  });
  return open;
}

/**
 * The environment for the harnesses' helper processes (ip, the BPF loader, their agents): this
 * one without what makes a Node child of jest's worker join it (its IPC channel, cluster id,
 * NODE_OPTIONS).
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_CHANNEL_FD;
  delete env.NODE_CHANNEL_SERIALIZATION_MODE;
  delete env.NODE_OPTIONS;
  delete env.NODE_UNIQUE_ID;
  return env;
}
