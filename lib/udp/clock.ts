// A coarse clock for the flow tables: Date.now() costs 25-150 ns (more where the clock source has
// no vDSO), paid per datagram; flows live for minutes, so a time read every TICK_MS is enough. The
// timer runs (unref'd) only while some table holds flows.
const TICK_MS = 100;

let users = 0;
let timer: NodeJS.Timeout | undefined;

/** The time, at most TICK_MS old while a table is armed (exact otherwise). */
export const clock = { now: Date.now() };

/** A table starts holding flows: keep the clock ticking. */
export function clockUse(): void {
  if (users++ === 0) {
    clock.now = Date.now();
    timer = setInterval(() => {
      clock.now = Date.now();
    }, TICK_MS);
    timer.unref();
  }
}

/** A table holds no flows any more. */
export function clockRelease(): void {
  if (users > 0 && --users === 0) {
    clearInterval(timer);
    timer = undefined;
  }
}

/** The time for a datagram: the ticking clock, or Date.now() when nothing keeps it ticking. */
export function now(): number {
  return users > 0 ? clock.now : (clock.now = Date.now());
}
