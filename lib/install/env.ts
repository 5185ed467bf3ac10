// The preload's configuration, from the environment: NODE_TOA_TRUST_PROXY, NODE_TOA_ACK,
// NODE_TOA_KINDS, NODE_TOA_MULTIPLE, NODE_TOA_PROXY_PROTOCOL, NODE_TOA_UDP. Each bad value is an error naming the variable and the value,
// so a start command with a typo stops at once instead of serving with the wrong trust.
import { compileKinds } from '../core/kinds';
import { MULTIPLE_VALUES, type Multiple } from '../core/select';
import { compileTrust } from '../core/trust';
import type { InstallOptions } from './install';
import type { UdpOptions } from '../udp/options';

/** The variables, in the order they are documented. */
export const ENV_VARIABLES = [
  'NODE_TOA_TRUST_PROXY',
  'NODE_TOA_ACK',
  'NODE_TOA_KINDS',
  'NODE_TOA_MULTIPLE',
  'NODE_TOA_PROXY_PROTOCOL',
  'NODE_TOA_UDP',
] as const;

export type EnvVariable = (typeof ENV_VARIABLES)[number];

/** A bad value in the environment. `variable` and `value` say which. */
export class EnvError extends Error {
  readonly code = 'ERR_TOA_BAD_ENV';
  constructor(
    readonly variable: EnvVariable,
    readonly value: string,
    why: string,
  ) {
    super(`node-toa: ${variable}='${value}' ${why}`);
    this.name = 'EnvError';
  }
}

const ACK_VALUES = ['auto', 'on', 'off', 'sockops', 'packet'] as const;

/** A variable's value, trimmed; undefined when unset or empty (`NODE_TOA_KINDS=` in a shell). */
function read(env: NodeJS.ProcessEnv, name: EnvVariable): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw;
}

function trustProxy(value: string): InstallOptions['trustProxy'] {
  const text = value.trim();
  if (text === 'false') return false;
  if (text === 'true') return true;
  try {
    compileTrust(text);
  } catch (error) {
    const why = (error as Error).message.replace(/^trustProxy: /, '').replace(/ \(in .*\)$/, '');
    throw new EnvError(
      'NODE_TOA_TRUST_PROXY',
      value,
      `is not a list of proxies: ${why} (expected IP addresses, CIDR ranges or loopback, linklocal, uniquelocal, comma-separated)`,
    );
  }
  return text;
}

function ack(value: string): InstallOptions['ack'] {
  const text = value.trim();
  if (!(ACK_VALUES as readonly string[]).includes(text)) {
    throw new EnvError('NODE_TOA_ACK', value, 'must be auto, on, off, sockops or packet');
  }
  if (text === 'auto') return 'auto';
  if (text === 'sockops' || text === 'packet') return { source: text };
  return text === 'on';
}

function kinds(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) {
      throw new EnvError('NODE_TOA_KINDS', value, 'must be TCP option kinds from 9 to 255, comma-separated, such as 200,253,254,28');
    }
  }
  const list = parts.map(Number);
  try {
    compileKinds(list);
  } catch (error) {
    throw new EnvError('NODE_TOA_KINDS', value, `is not usable: ${(error as Error).message}`);
  }
  return list;
}

function multiple(value: string): Multiple {
  const text = value.trim();
  if ((MULTIPLE_VALUES as readonly string[]).includes(text)) return text as Multiple;
  throw new EnvError('NODE_TOA_MULTIPLE', value, `must be one of ${MULTIPLE_VALUES.join(', ')}`);
}

function proxyProtocol(value: string): InstallOptions['proxyProtocol'] {
  const text = value.trim();
  if (text === 'required') return true;
  if (text === 'optional') return 'optional';
  if (text === 'off') return false;
  throw new EnvError('NODE_TOA_PROXY_PROTOCOL', value, 'must be required, optional or off');
}

/**
 * The install() options the environment asks for. Unset (or empty) variables are left out, so
 * install()'s defaults apply. Throws an EnvError for the first bad value.
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): InstallOptions {
  const options: InstallOptions = {};
  const t = read(env, 'NODE_TOA_TRUST_PROXY');
  if (t !== undefined) options.trustProxy = trustProxy(t);
  const a = read(env, 'NODE_TOA_ACK');
  if (a !== undefined) options.ack = ack(a);
  const k = read(env, 'NODE_TOA_KINDS');
  if (k !== undefined) options.kinds = kinds(k);
  const m = read(env, 'NODE_TOA_MULTIPLE');
  if (m !== undefined) options.multiple = multiple(m);
  const p = read(env, 'NODE_TOA_PROXY_PROTOCOL');
  if (p !== undefined) options.proxyProtocol = proxyProtocol(p);
  return options;
}

const UDP_ITEMS = 'spp, proxy-protocol, uoa (comma-separated), each optionally with :required or :optional (uoa: :on or :auto)';

/**
 * NODE_TOA_UDP: the headers every dgram socket of the process reads, e.g. `spp`,
 * `proxy-protocol:optional`, `spp,uoa`. spp and proxy-protocol are required unless `:optional`;
 * uoa is `auto` (the tap when the process may open it, else uoa.ko) unless `:on`. Unset, empty or
 * `off`: undefined (dgram sockets are left alone). Throws an EnvError for a bad value.
 */
export function udpFromEnv(env: NodeJS.ProcessEnv = process.env): Omit<UdpOptions, 'trustProxy'> | undefined {
  const value = read(env, 'NODE_TOA_UDP');
  if (value === undefined || value.trim() === 'off') return undefined;
  const options: { spp?: boolean | 'optional'; proxyProtocol?: boolean | 'optional'; uoa?: boolean | 'auto' } = {};
  for (const raw of value.split(',')) {
    const [name, mode, extra] = raw.trim().split(':');
    const twice = () => new EnvError('NODE_TOA_UDP', value, `names ${name} twice`);
    if (extra !== undefined) throw new EnvError('NODE_TOA_UDP', value, `must be ${UDP_ITEMS}`);
    if (name === 'spp' || name === 'proxy-protocol') {
      if (mode !== undefined && mode !== 'required' && mode !== 'optional') {
        throw new EnvError('NODE_TOA_UDP', value, `has ${name}:${mode}; ${name} takes :required or :optional`);
      }
      const key = name === 'spp' ? 'spp' : 'proxyProtocol';
      if (options[key] !== undefined) throw twice();
      options[key] = mode === 'optional' ? 'optional' : true;
    } else if (name === 'uoa') {
      if (mode !== undefined && mode !== 'on' && mode !== 'auto') {
        throw new EnvError('NODE_TOA_UDP', value, `has uoa:${mode}; uoa takes :on or :auto`);
      }
      if (options.uoa !== undefined) throw twice();
      options.uoa = mode === 'on' ? true : 'auto';
    } else {
      throw new EnvError('NODE_TOA_UDP', value, `must be ${UDP_ITEMS}`);
    }
  }
  return options;
}
