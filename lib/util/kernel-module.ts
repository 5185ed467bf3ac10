// Is a vendor TOA kernel module loaded? Only then can getpeername differ from the SYN's source,
// so only then is the second syscall per connection worth making. Read once per process.
import { readFileSync } from 'node:fs';

// toa (Tencent, Huawei, UCloud, LVS), vtoa / ali_toa (Alibaba), toa_nat64 (DPVS) and the like.
const TOA_MODULE_NAME = /^(?:[a-z0-9]+_)?v?toa(?:_[a-z0-9]+)?$/;

/** Names of loaded kernel modules that look like a vendor TOA module, from /proc/modules text. */
export function toaModuleNames(modules: string): string[] {
  return modules
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => TOA_MODULE_NAME.test(name));
}

let loaded: boolean | undefined;

export function toaModuleLoaded(): boolean {
  if (loaded === undefined) {
    try {
      loaded = toaModuleNames(readFileSync('/proc/modules', 'latin1')).length > 0;
    } catch {
      loaded = false;
    }
  }
  return loaded;
}
