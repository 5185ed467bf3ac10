// The process-wide defaults: the resolver every call without options uses (realRemoteAddress(s),
// socket.realRemoteAddress(), createResolver(), the integrations without core options). Set by
// configure(), and by install() while it is on.
import { compileOptions } from '../core/options';
import { Resolver } from './resolver';

let defaults = new Resolver(compileOptions(undefined, 'configure'));

export function defaultResolver(): Resolver {
  return defaults;
}

export function setDefaultResolver(resolver: Resolver): void {
  defaults = resolver;
}
