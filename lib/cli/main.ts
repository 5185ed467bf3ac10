// The `node-toa` command: `doctor` (can this machine read TOA?) and `inspect` (what does each
// connection arriving here carry?). Errors are one line and an exit code, never a stack trace:
// 2 for bad arguments, 1 for a failed check or a server that cannot start.
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runDoctor, type CheckResult } from './doctor';
import { ackVerdict } from './doctor-ack';
import { watchPackets, type PacketWatch } from './doctor-packets';
import { checkPreload } from './preload-check';
import * as toa from '../index';
import { listenProblem } from '../util/address';
import { Inspector, formatConnection, formatSummary, endpointText, type InspectedConnection } from './inspect';

const USAGE = `node-toa: the real client address of TCP connections that came through an L4 proxy
putting it into a TCP option (TOA), read from the saved SYN.

Usage:
  node-toa doctor [--json] [--listen PORT [--trust CIDR,...] [--ack] [--seconds 30] [--count 20]] [-- COMMAND...]
      Checks this machine, one line each: the addon, TCP_SAVE_SYN (really tried on a loopback
      connection), syncookies, a vendor TOA kernel module, the ACK tap's two sources: CAP_NET_RAW
      for packet sockets and the sock_ops program (really loaded); the tap runs if either does.
      Exits with 1 when TOA cannot be read from the SYN here.
      With a command (node-toa doctor -- node app.js): also whether node-toa/preload would be
      active in it (its -r/--require/--import flags, NODE_OPTIONS) and what it would trust, from
      NODE_TOA_TRUST_PROXY, NODE_TOA_ACK, NODE_TOA_KINDS, NODE_TOA_MULTIPLE as the preload reads
      them. Exits with 1 when the preload would not load, or would stop the process.
      With --listen, then listens on PORT behind the proxy until --count connections or --seconds
      passed, and says which packet the TOA arrived in (with --ack the handshake ACK and the
      first data packet are read too): whether the application needs the ACK tap. Exits with 1
      when no TOA arrived from a trusted sender.

  node-toa inspect [--port 8080] [--host ::] [--trust CIDR,...] [--kinds K,...] [--ack | --no-ack]
                   [--ack-source auto|sockops|packet] [--json]
      Listens and prints a line for every connection: time, peer (the proxy), real client,
      source (toa | kernel | peer), option kind and the packet that carried it (the SYN, the
      handshake ACK, the first data packet). Answers HTTP requests with the same as JSON, so
      you can point the proxy at it and curl through it. Ctrl-C prints a summary.
      Reads the handshake ACK and first data packet too (where Tencent, Alibaba Anti-DDoS,
      DPVS and Huawei put TOA) through the sock_ops program where it loads (CAP_BPF and
      CAP_NET_ADMIN), else packet sockets (CAP_NET_RAW); when neither opens, it says so once
      and reads the SYN only, as node-toa/preload's NODE_TOA_ACK=auto does.
        --port   TCP port (default 8080; 0 picks a free one)
        --host   address to listen on (default ::, every IPv6 and IPv4 address)
        --trust  proxies whose TOA is believed: IPs, CIDR ranges, loopback, linklocal,
                 uniquelocal, comma-separated (default: none; TOA from others is shown as ignored)
        --kinds  TCP option kinds read as TOA (default 200,249,253,254)
        --ack    require the ACK tap: exit 1 when neither source opens
        --no-ack read the SYN only, as an application without { ack: true } does
        --ack-source sockops|packet
                 require the ACK tap through that source (exit 1 when it cannot open), as
                 NODE_TOA_ACK=sockops|packet; auto (the default) takes either
        --json   one JSON object per line

  node-toa --help | --version

Exit codes: 0 fine, 1 a check failed or the server could not start, 2 bad arguments.
`;

/** An error the user can act on: printed as one line, with its exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function usageError(message: string): CliError {
  return new CliError(`${message}\n(see node-toa --help)`, 2);
}

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string }>;
type Values = Record<string, string | boolean | undefined>;

function parse(command: string, argv: string[], options: OptionSpecs): Values {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Values;
  } catch (error) {
    throw usageError(`node-toa ${command}: ${(error as Error).message}`);
  }
}

// ---- doctor ----

const PACKET_WATCH_OPTIONS = {
  listen: { type: 'string' },
  host: { type: 'string' },
  trust: { type: 'string' },
  seconds: { type: 'string' },
  count: { type: 'string' },
  ack: { type: 'boolean' },
} as const;

function positive(text: string | undefined, flag: string, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw usageError(`node-toa doctor: ${flag} must be a whole number from 1 to ${max}, got '${text}'`);
  }
  return Number(text);
}

/** `--listen PORT [--trust …] [--seconds 30] [--count 20] [--ack] [--host ::]`, or null. */
function packetWatch(values: Values): PacketWatch | null {
  const given = ['host', 'trust', 'seconds', 'count', 'ack'].filter((k) => values[k] !== undefined);
  if (values.listen === undefined) {
    if (given.length > 0) throw usageError(`node-toa doctor: --${given[0]} needs --listen PORT`);
    return null;
  }
  return {
    port: checkPort(values.listen as string),
    ...(values.host !== undefined ? { host: values.host as string } : {}),
    trust: (values.trust as string | undefined) ?? '',
    seconds: positive(values.seconds as string | undefined, '--seconds', 30, 3600),
    count: positive(values.count as string | undefined, '--count', 20, 100000),
    ack: values.ack === true,
  };
}

const MARK: Record<CheckResult['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', info: 'info' };

async function doctor(argv: string[]): Promise<number> {
  // `--` ends doctor's own options: what follows is the command to check.
  const split = argv.indexOf('--');
  const own = split < 0 ? argv : argv.slice(0, split);
  const command = split < 0 ? undefined : argv.slice(split + 1);
  const values = parse('doctor', own, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    ...PACKET_WATCH_OPTIONS,
  });
  if (values.help === true) {
    write(USAGE);
    return 0;
  }
  if (command !== undefined && command.length === 0) throw usageError('node-toa doctor: -- must be followed by the command to check, e.g. node-toa doctor -- node app.js');
  const watch = packetWatch(values);
  const report = await runDoctor();
  let preload: CheckResult[] = [];
  if (command !== undefined) preload = checkPreload(command, process.env, process.cwd(), report.ackTap);
  const preloadFailed = preload.some((c) => c.status === 'fail');
  let packetFailed = false;
  if (watch !== null && !report.failed) {
    const seen = await watchPackets(watch, (port) => {
      if (values.json !== true) {
        write(`node-toa doctor: listening on port ${port} for ${watch.seconds} s or ${watch.count} connections: send traffic through the proxy`);
      }
    });
    report.checks.push(seen);
    packetFailed = seen.status === 'fail';
  }
  if (values.json === true) {
    write(JSON.stringify(command === undefined ? report : { ...report, command, preload, preloadFailed }));
  } else {
    const all = [...report.checks, ...preload];
    const width = Math.max(...all.map((c) => c.id.length));
    for (const c of all) write(`${MARK[c.status]}  ${c.id.padEnd(width)}  ${c.message}`);
    write(
      report.failed
        ? 'TOA cannot be read from the SYN on this machine (see FAIL above).'
        : command === undefined
          ? ackVerdict(report.ackTap)
          : preloadFailed
            ? `\`${command.join(' ')}\` would not get real client addresses from node-toa/preload (see FAIL above).`
            : `\`${command.join(' ')}\` gets node-toa/preload: socket.remoteAddress is the client for the proxies trusted above.`,
    );
  }
  return report.failed || preloadFailed || packetFailed ? 1 : 0;
}

// ---- inspect ----

function checkPort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw usageError(`node-toa inspect: --port must be a port number from 0 to 65535, got '${text}'`);
  }
  return Number(text);
}

function checkKinds(text: string): number[] {
  return text.split(',').map((part) => {
    const kind = part.trim();
    if (!/^\d{1,3}$/.test(kind)) throw usageError(`node-toa inspect: --kinds must be option kinds such as 200,253,254, got '${text}'`);
    return Number(kind);
  });
}

// listen()'s own words for what went wrong, with what an operator of this command can do.
const LISTEN_HINTS: Record<string, string> = {
  EADDRINUSE: 'stop the other process or choose another --port',
  EACCES: 'choose --port 8080, or grant it: setcap cap_net_bind_service+ep $(command -v node)',
  EADDRNOTAVAIL: 'choose another --host',
};

function listenFailure(error: NodeJS.ErrnoException, host: string, port: number): CliError {
  const code = error.code ?? 'error';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new CliError(`node-toa inspect: cannot resolve --host ${host} (${code})`, 1);
  }
  if (error.syscall !== 'listen') return new CliError(`node-toa inspect: cannot listen on ${endpointText({ address: host, port })}: ${error.message}`, 1);
  const hint = LISTEN_HINTS[code];
  return new CliError(`node-toa inspect: ${listenProblem(code, host, port)} (${code})${hint ? `; ${hint}` : ''}`, 1);
}

/** `--ack` (on: the tap or exit 1), `--no-ack` (off), neither (auto: the tap where it can open). */
type AckMode = 'auto' | 'on' | 'off';
/** `--ack-source`: which of the tap's sources (auto: the sock_ops program, else packet sockets). */
type AckSource = 'auto' | 'sockops' | 'packet';
const ACK_SOURCES: readonly AckSource[] = ['auto', 'sockops', 'packet'];

const ACK_OFF_EFFECT =
  'TOA is read from the SYN only, so a proxy that tags the handshake ACK (Tencent anti-DDoS and CLB, Alibaba ' +
  'Anti-DDoS, DPVS since 2023, Huawei) shows none here: run as root, or grant CAP_BPF and CAP_NET_ADMIN for the ' +
  'sock_ops program (setcap cap_bpf,cap_net_admin+ep on node; docker run --cap-add BPF --cap-add NET_ADMIN) or ' +
  'CAP_NET_RAW for packet sockets (setcap cap_net_raw+ep on node; docker run --cap-add NET_RAW).';

const SOURCE_WORDS: Record<'sockops' | 'packet', string> = { sockops: 'the sock_ops program', packet: 'packet sockets' };

/**
 * Asks for the ACK tap before listening (a tap that cannot open throws there; it opens on
 * 'listening'), as node-toa/preload's NODE_TOA_ACK does. `flag`: the options that required it,
 * for the error. Returns, for auto, why it was refused.
 */
function openAckTap(server: http.Server, mode: AckMode, source: AckSource, flag: string): string | undefined {
  if (mode === 'off') return undefined;
  try {
    toa.enable(server, { ack: source === 'auto' ? true : { source } });
    return undefined;
  } catch (error) {
    const why = (error as Error).message.replace(/^node-toa: /, '');
    if (mode === 'on') throw new CliError(`node-toa inspect: ${flag}: ${why}`, 1);
    const code = (error as NodeJS.ErrnoException).code;
    // Thrown for auto only once the sock_ops program did not load either (tap/open.ts).
    return code === 'ERR_TOA_NO_CAP_NET_RAW' ? 'the sock_ops program does not load and this process lacks CAP_NET_RAW' : why;
  }
}

async function inspect(argv: string[]): Promise<number> {
  const values = parse('inspect', argv, {
    port: { type: 'string', short: 'p', default: '8080' },
    host: { type: 'string' },
    trust: { type: 'string', short: 't' },
    kinds: { type: 'string' },
    ack: { type: 'boolean' },
    'no-ack': { type: 'boolean' },
    'ack-source': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    write(USAGE);
    return 0;
  }
  if (values.ack === true && values['no-ack'] === true) throw usageError('node-toa inspect: --ack and --no-ack contradict each other: give one');
  const ackSource = (values['ack-source'] as string | undefined) ?? 'auto';
  if (!(ACK_SOURCES as readonly string[]).includes(ackSource)) {
    throw usageError(`node-toa inspect: --ack-source must be auto, sockops or packet, got '${ackSource}'`);
  }
  if (ackSource !== 'auto' && values['no-ack'] === true) throw usageError(`node-toa inspect: --ack-source ${ackSource} and --no-ack contradict each other: give one`);
  // A chosen source is required, as NODE_TOA_ACK=sockops|packet requires it.
  const ackMode: AckMode = values.ack === true || ackSource !== 'auto' ? 'on' : values['no-ack'] === true ? 'off' : 'auto';
  const ackFlag = [...(values.ack === true ? ['--ack'] : []), ...(ackSource !== 'auto' ? [`--ack-source ${ackSource}`] : [])].join(' ');
  const port = checkPort(values.port as string);
  const host = values.host as string | undefined;
  if (host !== undefined && host.trim() === '') throw usageError('node-toa inspect: --host must not be empty');
  const trust = values.trust === undefined ? [] : (values.trust as string).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const kinds = values.kinds === undefined ? undefined : checkKinds(values.kinds as string);
  const json = values.json === true;

  let inspector: Inspector;
  try {
    inspector = new Inspector({ trustProxy: trust.length === 0 ? false : trust, kinds });
  } catch (error) {
    // The core's own validation, e.g. "trustProxy: invalid range on address: 10.0.0.0/33".
    const message = (error as Error).message.replace(/^trustProxy: /, '--trust: ').replace(/^kinds/, '--kinds');
    throw usageError(`node-toa inspect: ${message}`);
  }

  const inspected = new WeakMap<object, InspectedConnection>();
  const server = http.createServer((req, res) => {
    const seen = inspected.get(req.socket) ?? inspector.inspect(req.socket);
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ ...seen, request: { method: req.method, url: req.url } }, null, 2)}\n`);
  });
  // On connect, not on request: a plain TCP connection that sends nothing gets its line too.
  server.on('connection', (socket) => {
    const seen = inspector.inspect(socket);
    inspected.set(socket, seen);
    write(json ? JSON.stringify({ event: 'connection', ...seen }) : formatConnection(seen));
  });

  // Set once listening: the tap was wanted (auto) and could not open.
  let tapMissed = false;
  // Ctrl-C handlers first: whoever reads the 'listening' line may interrupt at once.
  const stopped = new Promise<number>((resolve) => {
    const stop = () => {
      const summary = inspector.summary();
      write(json ? JSON.stringify({ event: 'summary', ...summary }) : `\n${formatSummary(summary)}`);
      if (!json && tapMissed && summary.withToa === 0) write(`  No TOA seen, and the ACK tap was off: ${ACK_OFF_EFFECT}`);
      server.closeAllConnections();
      server.close();
      // Exit even if some handle (a warning stream, the ACK tap) lingers; never keeps us alive.
      setTimeout(() => process.exit(0), 1000).unref();
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

  const tapRefused = openAckTap(server, ackMode, ackSource as AckSource, ackFlag);
  try {
    await toa.listen(server, { port, ...(host !== undefined ? { host } : {}) });
  } catch (error) {
    throw listenFailure(error as NodeJS.ErrnoException, host ?? '::', port);
  }
  const address = server.address() as { address: string; port: number };
  // What is, not what was asked: the tap opened on 'listening' (or, off Linux, never), and how.
  const ackSourceOpened = toa.stats().taps.find((t) => t.port === address.port)?.source;
  const ack = ackSourceOpened !== undefined;
  const ackOff = ack ? undefined : ackMode === 'off' ? '--no-ack' : (tapRefused ?? `no ACK tap on ${process.platform}`);
  const listening = {
    event: 'listening',
    address: address.address,
    port: address.port,
    saveSyn: toa.isEnabled(server),
    trust,
    ack,
    ...(ackSourceOpened !== undefined ? { ackSource: ackSourceOpened } : {}),
    ...(ackOff !== undefined ? { ackOff } : {}),
  };
  if (json) {
    write(JSON.stringify(listening));
  } else {
    write(
      `node-toa inspect: listening on ${endpointText(address)} (TCP_SAVE_SYN ${listening.saveSyn ? 'on' : 'OFF: run node-toa doctor'}; ` +
        `trusting ${trust.length > 0 ? trust.join(', ') : 'no proxy: TOA will be shown as ignored'}; ` +
        `${ackSourceOpened !== undefined ? `ACK tap on: ${SOURCE_WORDS[ackSourceOpened]}` : `ACK tap off: ${ackOff}`}). Ctrl-C for a summary.`,
    );
    if (!ack && ackMode === 'auto') write(`node-toa inspect: ${ACK_OFF_EFFECT}`);
  }
  tapMissed = !ack && ackMode === 'auto';

  return stopped;
}

// ---- entry ----

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'doctor':
      return doctor(rest);
    case 'inspect':
      return inspect(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      write(USAGE);
      return command === undefined ? 2 : 0;
    case '--version':
    case '-v':
      write(version());
      return 0;
    default:
      throw usageError(`node-toa: unknown command '${command}'`);
  }
}

/** Runs the CLI with `argv` (without node and the script); sets process.exitCode. */
export async function main(argv: string[]): Promise<void> {
  try {
    process.exitCode = await run(argv);
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      // A bug, not a user error: still one line, with the stack only on request.
      process.stderr.write(`node-toa: ${(error as Error).message ?? String(error)}\n`);
      if (process.env.NODE_TOA_DEBUG) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
      process.exitCode = 1;
    }
  }
}
