// A child process that says hello: one JSON line on stdout once it is ready, then serves until
// its stdin closes. The smoke run of the Node matrix and the Bun/Deno probe start theirs this way.
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

/** Starts `command` and resolves to the process and its first line, parsed; bounded by `timeoutMs`. */
export function startWithHello<T>(command: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; hello: T }> {
  const name = command.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: no first line within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before its first line: ${stderr}`));
    });
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, hello: JSON.parse(line) as T });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${name} said ${line} ${stderr}`));
      }
    });
  });
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
