// What to install to build the addon from source, said once for the install script and `doctor`.
import * as fs from 'node:fs';

/** The packages that give node-gyp what it needs (python3, make, a C++17 compiler, kernel headers). */
export function buildHint(platform: string = process.platform, alpine = fs.existsSync('/etc/alpine-release')): string {
  if (platform === 'linux' && alpine) return 'apk add python3 make g++ linux-headers';
  if (platform === 'linux') return 'install python3, make and g++ (Debian/Ubuntu: apt-get install python3 make g++; RHEL: dnf install python3 make gcc-c++)';
  if (platform === 'darwin') return 'xcode-select --install';
  return 'install python3, make and a C++17 compiler';
}

/** The one line printed when the addon is missing: why, and how to get it. */
export function missingAddonMessage(reason: string): string {
  return (
    `node-toa: no native addon (${reason}); node-toa works without it, answering with the socket's own ` +
    `address (source 'peer'). To build it: ${buildHint()}, then npm rebuild node-toa`
  );
}
