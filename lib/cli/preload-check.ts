// `node-toa doctor -- <command>`: would node-toa/preload be active in that command, and what
// would it trust? Reads the command's arguments and NODE_OPTIONS as Node would take them, and the
// NODE_TOA_* variables exactly as the preload does (env.ts), in this process's environment, which
// is the one the command would get. Pure functions, tested on their own; the CLI prints them.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { DEFAULT_KINDS } from '../core/kinds';
import { ENV_VARIABLES, EnvError, optionsFromEnv } from '../install/env';
import type { InstallOptions } from '../install/install';
import type { CheckResult } from './check-result';
import { opensWith, type AckTap } from './doctor-ack';
import { udpPreloadCheck } from './doctor-uoa';

/** How the preload would be loaded, if at all. */
export interface PreloadUse {
  /** Where: the command's own flags, or NODE_OPTIONS. */
  via: 'argv' | 'NODE_OPTIONS' | null;
  /** The flag as written, e.g. `-r node-toa/preload`, `--import=node-toa/preload`. */
  flag?: string;
  /** The command runs node itself (else only NODE_OPTIONS can carry the preload). */
  node: boolean;
}

// Node's options that take their value as the next argument (the ones a start command uses).
const WITH_VALUE = new Set([
  '-r', '--require', '--import', '--loader', '--experimental-loader', '-e', '--eval', '-p', '--print',
  '-C', '--conditions', '--input-type', '--title', '--env-file', '--inspect-port', '--max-old-space-size',
  '--stack-size', '--disable-warning', '--watch-path', '--test-reporter', '--test-reporter-destination',
]);
const PRELOAD_FLAGS = new Set(['-r', '--require', '--import']);

/** A module name or path that is node-toa's preload. */
export function isPreloadSpecifier(value: string): boolean {
  const v = value.replace(/\\/g, '/');
  return v === 'node-toa/preload' || /(^|\/)node-toa\/dist\/preload\.(c?js|mjs)$/.test(v) || /(^|\/)node-toa\/preload(\.(c?js|mjs))?$/.test(v);
}

/** The flag that loads the preload among node options (before the script), or undefined. */
export function preloadFlag(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      const name = arg.slice(0, eq);
      if (PRELOAD_FLAGS.has(name) && isPreloadSpecifier(arg.slice(eq + 1))) return arg;
      continue;
    }
    if (WITH_VALUE.has(arg)) {
      const value = args[i + 1];
      if (value !== undefined && PRELOAD_FLAGS.has(arg) && isPreloadSpecifier(value)) return `${arg} ${value}`;
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return undefined; // the script: what follows is its own arguments
  }
  return undefined;
}

/** NODE_OPTIONS split as Node splits it: on spaces, with double quotes and backslash escapes. */
export function splitNodeOptions(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted && i + 1 < text.length) {
      current += text[++i];
    } else if (c === '"') {
      quoted = !quoted;
      has = true;
    } else if (c === ' ' && !quoted) {
      if (has || current !== '') out.push(current);
      current = '';
      has = false;
    } else {
      current += c;
    }
  }
  if (has || current !== '') out.push(current);
  return out;
}

function isNode(command: string): boolean {
  return /^(node|nodejs)(\d+(\.\d+)*)?(\.exe)?$/i.test(path.basename(command));
}

/** Whether the command would load node-toa/preload, and how. */
export function preloadInCommand(command: readonly string[], env: NodeJS.ProcessEnv): PreloadUse {
  const node = command.length > 0 && isNode(command[0]);
  if (node) {
    const flag = preloadFlag(command.slice(1));
    if (flag !== undefined) return { via: 'argv', flag, node };
  }
  const fromEnv = preloadFlag(splitNodeOptions(env.NODE_OPTIONS ?? ''));
  if (fromEnv !== undefined) return { via: 'NODE_OPTIONS', flag: fromEnv, node };
  return { via: null, node };
}

/** How node-toa/preload resolves from `cwd`, as `-r` resolves it there (undefined: not found). */
export function resolvePreload(cwd: string): string | undefined {
  try {
    // As from a module in cwd: node_modules up the tree, and the package itself (self-reference).
    return createRequire(path.join(cwd, '[preload]')).resolve('node-toa/preload');
  } catch {
    return undefined;
  }
}

/**
 * The preload's checks for `command` run in `cwd` with `env`: `preload` (active, and how),
 * `preload-module` (found from cwd), `trust`, `ack`, `kinds`, `multiple`, `udp` (with NODE_TOA_UDP).
 * `ackTap` is what doctor found of the ACK tap's sources (doctor-ack.ts); a boolean says only
 * whether this process has CAP_NET_RAW (the sock_ops program not known); undefined: nothing known.
 */
export function checkPreload(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  ackTap: AckTap | boolean | undefined,
  resolve: (cwd: string) => string | undefined = resolvePreload,
): CheckResult[] {
  const tap: AckTap = typeof ackTap === 'object' ? ackTap : ackTap === undefined ? {} : { packet: ackTap };
  const checks: CheckResult[] = [];
  const use = preloadInCommand(command, env);
  const shown = command.join(' ');
  if (use.via === 'argv') {
    checks.push({ id: 'preload', status: 'ok', message: `\`${shown}\` loads node-toa/preload (${use.flag})` });
  } else if (use.via === 'NODE_OPTIONS') {
    checks.push({
      id: 'preload',
      status: 'ok',
      message: `\`${shown}\` loads node-toa/preload through NODE_OPTIONS (${use.flag})${use.node ? '' : ', which the node processes it starts inherit'}`,
    });
  } else {
    checks.push({
      id: 'preload',
      status: 'fail',
      message: use.node
        ? `\`${shown}\` does not load node-toa/preload: start it as \`node -r node-toa/preload ${command.slice(1).join(' ')}\`, or set NODE_OPTIONS='--require node-toa/preload'`
        : `\`${shown}\` is not node itself, and NODE_OPTIONS does not load node-toa/preload: set NODE_OPTIONS='--require node-toa/preload' (npm, pm2, nodemon and Docker CMD pass it on to node)`,
    });
  }
  if (use.via !== null) {
    const file = resolve(cwd);
    checks.push(
      file !== undefined
        ? { id: 'preload-module', status: 'ok', message: `node-toa/preload resolves from ${cwd} to ${file}` }
        : { id: 'preload-module', status: 'fail', message: `node-toa/preload cannot be found from ${cwd}: install node-toa there (npm install node-toa), or run the command where it is installed` },
    );
  }

  let options: ReturnType<typeof optionsFromEnv>;
  try {
    options = optionsFromEnv(env);
  } catch (error) {
    const e = error as EnvError;
    checks.push({ id: e.variable === 'NODE_TOA_TRUST_PROXY' ? 'trust' : e.variable.slice('NODE_TOA_'.length).toLowerCase(), status: 'fail', message: `${e.message.replace(/^node-toa: /, '')}: the preload would stop the process at startup` });
    return checks;
  }
  const t = options.trustProxy;
  if (t === undefined || t === false) {
    checks.push({
      id: 'trust',
      status: 'warn',
      message: `NODE_TOA_TRUST_PROXY is ${t === false ? "'false'" : 'not set'}: no proxy is trusted, so socket.remoteAddress stays the peer; set it to your proxies' addresses, e.g. NODE_TOA_TRUST_PROXY=198.51.100.0/24`,
    });
  } else if (t === true) {
    checks.push({ id: 'trust', status: 'warn', message: "NODE_TOA_TRUST_PROXY='true': every peer is trusted, so anyone who can reach the server directly chooses the address it is seen with" });
  } else {
    checks.push({ id: 'trust', status: 'ok', message: `trusts TOA from ${String(t).split(',').map((s) => s.trim()).filter((s) => s !== '').join(', ')} (NODE_TOA_TRUST_PROXY)` });
  }
  checks.push(ackCheck(options.ack, tap));
  checks.push({
    id: 'kinds',
    status: 'info',
    message: options.kinds === undefined ? `TCP option kinds ${DEFAULT_KINDS.join(',')} (the default; NODE_TOA_KINDS)` : `TCP option kinds ${options.kinds.join(',')} (NODE_TOA_KINDS)`,
  });
  checks.push({
    id: 'multiple',
    status: 'info',
    message: `several TOA options in one packet: ${options.multiple ?? 'ignore'}${options.multiple === undefined ? ' (the default; NODE_TOA_MULTIPLE)' : ' (NODE_TOA_MULTIPLE)'}`,
  });
  checks.push(...udpPreloadCheck(env, tap.packet));
  return checks;
}

const NEEDS: Record<'auto' | 'sockops' | 'packet', string> = {
  auto: 'the sock_ops program (CAP_BPF and CAP_NET_ADMIN) or CAP_NET_RAW (packet sockets)',
  sockops: 'the sock_ops program (CAP_BPF and CAP_NET_ADMIN)',
  packet: 'CAP_NET_RAW (packet sockets)',
};

/**
 * What NODE_TOA_ACK (parsed: `ack`) makes the preload do with the ACK tap here, as install()
 * decides it: auto and on take the sock_ops program where it loads, else packet sockets; auto
 * reads SYNs only when neither opens, on, sockops and packet stop the process.
 */
function ackCheck(ack: InstallOptions['ack'], tap: AckTap): CheckResult {
  const id = 'ack';
  if (ack === false) return { id, status: 'info', message: 'NODE_TOA_ACK=off: TOA is read from SYNs only' };
  // From the environment an object is { source: 'sockops' | 'packet' } (env.ts); any other is on.
  const value = ack === undefined || ack === 'auto' ? 'auto' : ack === true || ack.source === undefined || ack.source === 'auto' ? 'on' : ack.source;
  const name = `NODE_TOA_ACK=${value}`;
  const wanted = value === 'on' ? 'auto' : value;
  const opens = opensWith(wanted, tap);
  const sockopsNo = `the sock_ops program does not load here (${tap.sockopsError ?? 'unknown error'})`;
  if (opens === 'sockops') {
    return {
      id,
      status: value === 'auto' ? 'info' : 'ok',
      message: `${name}: every TCP server also reads TOA from handshake ACKs (the ACK tap), through the sock_ops program, which loads here`,
    };
  }
  if (opens === 'packet') {
    return {
      id,
      status: value === 'auto' ? 'info' : 'ok',
      message:
        `${name}: every TCP server also reads TOA from handshake ACKs (the ACK tap), through packet sockets, as ` +
        `CAP_NET_RAW is there${wanted === 'auto' ? ` and ${sockopsNo}` : ''}`,
    };
  }
  if (opens === null) {
    const stops = 'the preload would stop the process at startup';
    const neither = `${sockopsNo} and this process lacks CAP_NET_RAW`;
    if (value === 'auto') return { id, status: 'info', message: `${name}: ${neither}, so SYNs only (one warning at startup says so)` };
    return {
      id,
      status: 'fail',
      message:
        wanted === 'packet'
          ? `${name} needs CAP_NET_RAW (packet sockets), which this process lacks: ${stops}`
          : wanted === 'sockops'
            ? `${name}: ${sockopsNo}: ${stops}`
            : `${name}: ${neither}, so neither source of the ACK tap opens: ${stops}`,
    };
  }
  return {
    id,
    status: 'info',
    message: `${name}: every TCP server also reads TOA from handshake ACKs if ${NEEDS[wanted]} allows${value === 'auto' ? ', else SYNs only' : ', else the preload stops the process'} (doctor cannot tell here)`,
  };
}

export { ENV_VARIABLES };
