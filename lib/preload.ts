// `node --require node-toa/preload app.js` (or `--import node-toa/preload`, or the same in
// NODE_OPTIONS): install() with the options of the environment (NODE_TOA_TRUST_PROXY, NODE_TOA_ACK,
// NODE_TOA_KINDS, NODE_TOA_MULTIPLE), before the app's first line. A bad value, or NODE_TOA_ACK=on
// without CAP_NET_RAW, stops the process here with one line naming the variable and the value.
import { optionsFromEnv } from './install/env';
import { installFrom } from './install/install';

try {
  installFrom(optionsFromEnv(process.env), 'preload');
} catch (error) {
  const e = error as NodeJS.ErrnoException;
  let message = e.message;
  if (e.code === 'ERR_TOA_NO_CAP_NET_RAW') message = `${message} (NODE_TOA_ACK='${process.env.NODE_TOA_ACK ?? ''}'; auto reads SYNs only instead)`;
  process.stderr.write(`node-toa/preload: ${message.replace(/^node-toa: /, '')}\n`);
  if (process.env.NODE_TOA_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(1);
}

export {};
