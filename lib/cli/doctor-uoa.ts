// `node-toa doctor`'s UDP check: DPVS UOA. In IP-option mode (uoa_mode ipo) datagrams reach any
// UDP socket and node-toa's tap reads the option; in private-protocol mode (uoa_mode opp, the
// default) they are IP protocol 248, which the kernel drops as an unknown protocol unless DPVS's
// uoa.ko is loaded. So: is the module loaded, and, when this process may open a packet socket,
// are protocol-248 packets arriving (sampled for a moment); else the kernel's count of packets of
// unknown protocols.
import { readFileSync } from 'node:fs';
import { binding } from '../addon/binding';
import { EnvError, udpFromEnv } from '../install/env';
import { uoaModuleLoaded } from '../udp/uoa';
import type { CheckResult } from './check-result';

/** InUnknownProtos from /proc/net/snmp text (the `Ip:` header line, then its values); undefined when absent. */
export function unknownProtos(snmp: string): number | undefined {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Ip:'));
  if (lines.length < 2) return undefined;
  const names = lines[0].trim().split(/\s+/);
  const values = lines[1].trim().split(/\s+/);
  const at = names.indexOf('InUnknownProtos');
  if (at < 0 || values[at] === undefined) return undefined;
  const n = Number(values[at]);
  return Number.isFinite(n) ? n : undefined;
}

/** Protocol-248 packets a tap on every port saw in `ms`; undefined when no tap may open here. */
export async function samplePrivateProtocol(ms: number): Promise<number | undefined> {
  const native = binding;
  if (native === null || !native.uoaTapSupported) return undefined;
  if (native.probePacketSocket() !== 0) return undefined;
  const tap = new native.UoaTap(4096, 1000);
  try {
    if (tap.open(0, 1 << 20).errno !== 0) return undefined;
    await new Promise((resolve) => setTimeout(resolve, ms));
    tap.drain();
    return tap.stats().privateProtocol;
  } finally {
    tap.close();
  }
}

export async function checkUoa(sampleMs = 500, modules = '/proc/modules', snmp = '/proc/net/snmp'): Promise<CheckResult> {
  const id = 'uoa';
  if (uoaModuleLoaded(modules)) {
    return {
      id,
      status: 'ok',
      message:
        "DPVS's uoa.ko is loaded: UDP sockets get its private-protocol (IP protocol 248) datagrams, and node-toa's uoa option asks it for their clients",
    };
  }
  const seen = await samplePrivateProtocol(sampleMs);
  if (seen !== undefined && seen > 0) {
    return {
      id,
      status: 'warn',
      message:
        `${seen} packet${seen === 1 ? '' : 's'} of IP protocol 248 (DPVS UOA private-protocol mode) arrived in ${sampleMs} ms, but uoa.ko is ` +
        "not loaded: the kernel drops them and no UDP socket ever sees them. Load DPVS's uoa.ko, or set DPVS's uoa_mode to ipo (IP option), which node-toa's tap reads",
    };
  }
  if (seen === 0) {
    return {
      id,
      status: 'info',
      message: `uoa.ko is not loaded and no IP protocol 248 packet arrived in ${sampleMs} ms (DPVS UOA in IP-option mode needs neither: node-toa's tap reads it)`,
    };
  }
  let unknown: number | undefined;
  try {
    unknown = unknownProtos(readFileSync(snmp, 'latin1'));
  } catch {
    unknown = undefined;
  }
  return {
    id,
    status: 'info',
    message:
      'uoa.ko is not loaded; without CAP_NET_RAW doctor cannot look for DPVS private-protocol (IP protocol 248) packets' +
      (unknown !== undefined ? ` (the kernel has dropped ${unknown} packets of unknown IP protocols since boot, /proc/net/snmp InUnknownProtos)` : ''),
  };
}

/**
 * `doctor -- COMMAND`'s line for NODE_TOA_UDP (none when unset): what every dgram socket would
 * read, or why the preload would stop the process. `capNetRaw`: whether this process has it.
 */
export function udpPreloadCheck(env: NodeJS.ProcessEnv, capNetRaw: boolean | undefined): CheckResult[] {
  let udp: ReturnType<typeof udpFromEnv>;
  try {
    udp = udpFromEnv(env);
  } catch (error) {
    const e = error as EnvError;
    return [{ id: 'udp', status: 'fail', message: `${e.message.replace(/^node-toa: /, '')}: the preload would stop the process at startup` }];
  }
  if (udp === undefined) return [];
  if (udp.uoa === true && capNetRaw === false) {
    return [{ id: 'udp', status: 'fail', message: 'NODE_TOA_UDP asks for uoa:on, which needs CAP_NET_RAW, which this process lacks: the preload would stop the process at startup' }];
  }
  const parts: string[] = [];
  if (udp.spp !== undefined) parts.push(`SPP (${udp.spp === 'optional' ? 'optional' : 'required'})`);
  if (udp.proxyProtocol !== undefined) parts.push(`PROXY v2 (${udp.proxyProtocol === 'optional' ? 'optional' : 'required'})`);
  if (udp.uoa !== undefined) parts.push(`DPVS UOA (${udp.uoa === true ? 'on: the tap' : capNetRaw === false ? 'auto: no CAP_NET_RAW, so uoa.ko only' : 'auto'})`);
  return [{ id: 'udp', status: 'info', message: `every dgram socket the app binds reads ${parts.join(', ')} from trusted proxies (NODE_TOA_UDP)` }];
}
