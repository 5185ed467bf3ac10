/** `host:port`, with an IPv6 host in brackets: how addresses are written in messages and logs. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
