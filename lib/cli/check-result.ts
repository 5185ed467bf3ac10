// What every `node-toa doctor` check returns (doctor.ts runs them; its helper files make some).

export type Status = 'ok' | 'warn' | 'fail' | 'info';

export interface CheckResult {
  /** Stable name for scripts: 'addon', 'saved-syn', 'syncookies', 'toa-module', 'cap-net-raw', 'sockops', 'uoa'. */
  id: string;
  status: Status;
  /** One line for an operator: what was found and what it means. */
  message: string;
}
