// Child processes that speak in lines: a test waits for what one says on stdout (watchLines), and
// one that says hello (one JSON line once it is ready) serves until its stdin closes: the smoke run
// of the Node matrix, the Bun/Deno probe and the apps under the preload start this way.
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

/** What a child said: its stdout line by line, the tail of its stderr, and a wait for a line. */
export interface LineWatch {
  readonly lines: readonly string[];
  stderr(): string;
  /**
   * The first line, from the start, for which `parse` returns a value. Rejects with what `parse`
   * throws, after `timeoutMs`, or once the child has exited without such a line.
   */
  next<T>(parse: (line: string) => T | undefined, timeoutMs: number): Promise<T>;
}

const STDERR_KEPT = 16_000;

/** Watches `child`'s stdout (and its stderr, when piped); `name` is for the errors. */
export function watchLines(child: ChildProcess, name: string): LineWatch {
  const lines: string[] = [];
  const wakes = new Set<() => void>();
  let stderr = '';
  let exited = false;
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEPT)));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const wake of [...wakes]) wake();
  });
  // After the last line: stdout closes after its 'end', on which readline has given every line.
  child.stdout!.once('close', () => {
    exited = true;
    for (const wake of [...wakes]) wake();
  });
  return {
    lines,
    stderr: () => stderr,
    next<T>(parse: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
      let seen = 0;
      return new Promise((resolve, reject) => {
        const said = () => `stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`;
        const look = () => {
          for (; seen < lines.length; seen++) {
            let value: T | undefined;
            try {
              value = parse(lines[seen]);
            } catch (error) {
              done();
              reject(error as Error);
              return;
            }
            if (value !== undefined) {
              done();
              resolve(value);
              return;
            }
          }
          if (exited) {
            done();
            reject(new Error(`${name} closed its stdout (exit ${child.exitCode ?? child.signalCode}) without the line awaited; ${said()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: not the line awaited in ${timeoutMs} ms; ${said()}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          wakes.delete(look);
        };
        wakes.add(look);
        look();
      });
    },
  };
}

/** A line's JSON value, or undefined when it is not JSON. */
export function json<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

/** Starts `command` and resolves to the process and its first line, parsed; bounded by `timeoutMs`. */
export async function startWithHello<T>(command: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; hello: T }> {
  const name = command.join(' ');
  const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
  const watch = watchLines(child, name);
  let first = true;
  try {
    const hello = await watch.next((line) => {
      if (!first) return undefined;
      first = false;
      const value = json<T>(line);
      if (value === undefined) throw new Error(`${name} said ${line} ${watch.stderr()}`);
      return value;
    }, timeoutMs);
    return { child, hello };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** Closes the process's stdin (its cue to exit) and waits, SIGKILL after 5 s. */
export function stopWithStdin(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin!.end();
  });
}
