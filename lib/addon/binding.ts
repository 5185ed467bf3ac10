// Loads the addon once. If it cannot load (no prebuild and no compiler, an exotic platform), the
// package still works and answers from the socket itself; `loadError` says why.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeBinding } from './native';

const PACKAGE_ROOT = path.join(__dirname, '..', '..');

/**
 * The C library this process runs on. node-gyp-build knows musl only from /etc/alpine-release (or
 * LIBC); a musl process elsewhere (Void, a distroless musl image, Bun's musl build) has the musl
 * loader mapped, which is what decides whether a glibc build can load at all.
 */
export function runningLibc(maps = '/proc/self/maps'): 'glibc' | 'musl' | null {
  if (process.platform !== 'linux') return null;
  try {
    return /\/ld-musl-|\/libc\.musl-/.test(fs.readFileSync(maps, 'utf8')) ? 'musl' : 'glibc';
  } catch {
    return null;
  }
}

/** The file to load: node-gyp-build's choice, except never a glibc prebuild in a musl process. */
export function addonPath(root: string, libc: 'glibc' | 'musl' | null): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  const file = nodeGypBuild.resolve(root);
  const name = path.basename(file);
  if (libc === 'musl' && name.split('.').includes('glibc')) {
    const musl = path.join(path.dirname(file), name.replace('.glibc.', '.musl.'));
    if (fs.existsSync(musl)) return musl;
    throw new Error(`No native build was found for libc=musl: ${file} is for glibc`);
  }
  return file;
}

function load(): { binding: NativeBinding | null; loadError: Error | null; file: string | null } {
  let file: string | null = null;
  try {
    // The sanitizer build (scripts/asan-test.sh) and other out-of-tree builds are loaded by path.
    const override = process.env.NODE_TOA_ADDON;
    file = override ? path.resolve(override) : addonPath(PACKAGE_ROOT, runningLibc());
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { binding: require(file) as NativeBinding, loadError: null, file };
  } catch (error) {
    return { binding: null, loadError: error as Error, file };
  }
}

const loaded = load();

export const binding: NativeBinding | null = loaded.binding;
export const loadError: Error | null = loaded.loadError;
/** The .node file that was loaded (or that failed to load); null when none was found. */
export const addonFile: string | null = loaded.file;
/** The addon is loaded and this platform keeps saved SYNs (Linux). */
export const savedSynAvailable: boolean = binding !== null && binding.savedSynSupported;
