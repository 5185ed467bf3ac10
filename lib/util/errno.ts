import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) names.set(value, name);

/** 'EINVAL' for 22: a name an operator can search for. */
export function errnoName(errno: number): string {
  return names.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

/** Whether `errno` says the process lacks a privilege (EPERM, EACCES): for a packet socket, CAP_NET_RAW. */
export function isPermissionError(errno: number): boolean {
  const e = Math.abs(errno);
  return e === constants.errno.EPERM || e === constants.errno.EACCES;
}
