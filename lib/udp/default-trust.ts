// The trust of configure() / install(), for sockets enabled without a trustProxy of their own:
// the one place lib/udp/ reaches the default resolver (main moves it to lib/resolve/defaults.ts).
import { defaultResolver } from '../resolve/defaults';
import type { TrustFn } from '../core/trust';

export function defaultTrust(): TrustFn {
  return defaultResolver().trust;
}
