// `node --require node-toa/preload app.js` (or `--import node-toa/preload`, or the same in
// NODE_OPTIONS): install() with the options of the environment (NODE_TOA_TRUST_PROXY, NODE_TOA_ACK,
// NODE_TOA_KINDS, NODE_TOA_MULTIPLE, NODE_TOA_PROXY_PROTOCOL, and NODE_TOA_UDP for dgram sockets),
// before the app's first line. A bad value, or NODE_TOA_ACK=on where no ACK tap can open (neither
// the sock_ops program nor packet sockets), stops the process here with one line naming the
// variable and the value.
// Node's types come with this entry point (see index.ts).
/// <reference types="node" preserve="true" />
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { optionsFromEnv, udpFromEnv } from './install/env';
import { installFrom } from './install/install';
import { installUdp } from './udp/install';

/** node-toa's own command (NODE_OPTIONS reaches it too): `node-toa doctor` must judge the environment, not die of it. */
function isOwnCli(main: string | undefined): boolean {
  if (main === undefined || path.basename(main) !== 'node-toa') return false;
  try {
    return realpathSync(main) === realpathSync(path.join(__dirname, '..', 'bin', 'node-toa'));
  } catch {
    return false;
  }
}

if (!isOwnCli(process.argv[1])) {
  try {
    const udp = udpFromEnv(process.env);
    installFrom(optionsFromEnv(process.env), 'preload');
    if (udp !== undefined) installUdp(udp);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    let message = e.message;
    if (e.code === 'ERR_TOA_NO_CAP_NET_RAW') message = `${message} (NODE_TOA_ACK='${process.env.NODE_TOA_ACK ?? ''}'; auto reads SYNs only instead)`;
    process.stderr.write(`node-toa/preload: ${message.replace(/^node-toa: /, '')}\n`);
    if (process.env.NODE_TOA_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(1);
  }
}

export {};
