// How addresses are written: the one place that knows IPv6 brackets and IPv4-mapped text.

/** `host:port`, with an IPv6 host in brackets: how addresses are written in messages and logs. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const MAPPED_PREFIX = '::ffff:';

/**
 * `a.b.c.d` for `::ffff:a.b.c.d`, how a dual-stack socket shows an IPv4 peer; undefined for any
 * other address (`::ffff:7f00:1` is written without dots, and is left as IPv6).
 */
export function mappedIPv4(address: string): string | undefined {
  return address.startsWith(MAPPED_PREFIX) && address.includes('.', MAPPED_PREFIX.length)
    ? address.slice(MAPPED_PREFIX.length)
    : undefined;
}

/**
 * What a failed listen(2) means, in the words both listen() and the CLI use; each adds the hint
 * its reader can act on (an option, a flag).
 */
export function listenProblem(code: string, host: string, port: number): string {
  const where = hostPort(host, port);
  switch (code) {
    case 'EADDRINUSE':
      return `${where} is already in use`;
    case 'EACCES':
      return `permission denied to listen on ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${host} is not an address of this machine`;
    default:
      return `cannot listen on ${where}: ${code}`;
  }
}
