// Loads the addon once. If it cannot load (no prebuild and no compiler, an exotic platform), the
// package still works and answers from the socket itself; `loadError` says why.
import * as path from 'node:path';
import type { NativeBinding } from './native';

function load(): { binding: NativeBinding | null; loadError: Error | null } {
  try {
    // The sanitizer build (scripts/asan-test.sh) and other out-of-tree builds are loaded by path.
    const override = process.env.NODE_TOA_ADDON;
    if (override) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return { binding: require(path.resolve(override)) as NativeBinding, loadError: null };
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    return { binding: nodeGypBuild(path.join(__dirname, '..', '..')), loadError: null };
  } catch (error) {
    return { binding: null, loadError: error as Error };
  }
}

const loaded = load();

export const binding: NativeBinding | null = loaded.binding;
export const loadError: Error | null = loaded.loadError;
/** The addon is loaded and this platform keeps saved SYNs (Linux). */
export const savedSynAvailable: boolean = binding !== null && binding.savedSynSupported;
