// Clients whose own kernel writes TOA, for the parts that measure it: the tests' sock_ops harness
// (test/helpers/sockops/index.ts, transpiled by run.js into build-bench/helpers/), and a child in its
// cgroup that opens and holds connections on request, so a server in this process accepts them.
import type * as net from 'node:net';
import * as path from 'node:path';
import { ROOT, acceptN } from './common';

type Sockops = typeof import('../test/helpers/sockops');
export type ToaGroup = import('../test/helpers/sockops').ToaCgroup;
/** Which packet of each connection carries the option: the SYN, the handshake ACK, the first data packet. */
export type ToaPacket = import('../test/helpers/sockops').ToaPacket;

export const TOA_PACKETS: readonly ToaPacket[] = ['syn', 'ack', 'data'];

export function sockops(): Sockops {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'build-bench', 'helpers', 'sockops', 'index.js')) as Sockops;
}

/** Why the harness cannot run here (not root, no clang, ...), or undefined when it can. */
export function sockopsUnavailable(): string | undefined {
  const a = sockops().sockopsAvailable();
  return a.ok ? undefined : a.reason;
}

/** A cgroup whose processes' kernel writes kind 254 (client 198.51.100.<port & 255>:<port>) into `packet`. */
export function toaGroup(packet: ToaPacket): Promise<ToaGroup> {
  return sockops().ToaCgroup.create({ packets: [packet] });
}

/** The client a TOA from `group` names for a connection whose source port is `port`. */
export function expectedClient(group: ToaGroup, port: number): string {
  return group.expected(port).address;
}

export interface HeldBatch {
  accepted: net.Socket[];
  close(): void;
}

export interface TaggedClients {
  /** Opens `count` connections from the cgroup and resolves with the server's side of each. */
  open(count: number): Promise<HeldBatch>;
  stop(): Promise<void>;
}

/**
 * A child in `group` that holds `count` connections to `port` open on each line it reads ("N\n"),
 * and closes them on "close\n".
 */
export function taggedClients(group: ToaGroup, server: net.Server, port: number): TaggedClients {
  const script = `
    const net = require('node:net');
    let open = [];
    require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
      if (line === 'close') { for (const s of open) s.destroy(); open = []; return; }
      for (let i = 0; i < Number(line); i++) open.push(net.connect(${port}, '127.0.0.1').on('error', () => {}));
    });`;
  const child = group.spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'inherit'] });
  return {
    async open(count) {
      const accepted = await acceptN(server, count, () => child.stdin!.write(`${count}\n`));
      return {
        accepted,
        close() {
          for (const s of accepted) s.destroy();
          child.stdin!.write('close\n');
        },
      };
    },
    async stop() {
      child.kill('SIGKILL');
      await group.close();
    },
  };
}
