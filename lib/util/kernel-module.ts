// Is a vendor TOA kernel module loaded? Only then can getpeername differ from the SYN's source,
// so only then is the second syscall per connection worth making. Read once per process.
import { readFileSync } from 'node:fs';

// toa (Tencent, Huawei, UCloud, LVS), vtoa / ali_toa (Alibaba), toa_nat64 (DPVS) and the like.
const TOA_MODULE = /^(?:[a-z0-9]+_)?v?toa(?:_[a-z0-9]+)?\s/m;

let loaded: boolean | undefined;

export function toaModuleLoaded(): boolean {
  if (loaded === undefined) {
    try {
      loaded = TOA_MODULE.test(readFileSync('/proc/modules', 'latin1'));
    } catch {
      loaded = false;
    }
  }
  return loaded;
}
