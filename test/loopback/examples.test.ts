// Each example in examples/ runs as documented (`node examples/<name>.js`, requiring node-toa by
// its package name), listens on loopback, and curl gets the client's own address and port back,
// printed by the example too.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

const ROOT = path.join(__dirname, '..', '..');
const onLinux = process.platform === 'linux' ? describe : describe.skip;

interface Running {
  child: ChildProcess;
  port: number;
  lines: string[];
  stderr(): string;
}

/** Starts an example on a free loopback port; resolves once it printed "listening on". */
function run(example: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [path.join('examples', example)], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', TRUST_PROXY: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${example} did not listen within 10 s: ${stderr}`));
    }, 10000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = /^listening on .*:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), lines, stderr: () => stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${example} exited (${code}): ${stderr}`));
    });
  });
}

function stop(r: Running): Promise<void> {
  return new Promise((resolve) => {
    if (r.child.exitCode !== null) return resolve();
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 3000);
    r.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    r.child.kill('SIGTERM');
  });
}

/**
 * curl from a port the kernel chooses (a fixed --local-port can be taken by any other process);
 * curl reports the port it was given (`%{local_port}`), which is what the answer must name.
 */
const LOCAL_PORT_MARK = '\n--local-port:';
function curl(port: number, extra: string[] = []): Promise<{ body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '5', ...extra, '--write-out', `${LOCAL_PORT_MARK}%{local_port}`, `http://127.0.0.1:${port}/hello`],
      { timeout: 10000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`curl: ${stderr || error.message}`));
        const at = stdout.lastIndexOf(LOCAL_PORT_MARK);
        const localPort = Number(stdout.slice(at + LOCAL_PORT_MARK.length));
        if (at < 0 || !Number.isInteger(localPort) || localPort <= 0) return reject(new Error(`curl reported no local port: ${JSON.stringify(stdout)}`));
        resolve({ body: stdout.slice(0, at), localPort });
      },
    );
  });
}

onLinux('examples', () => {
  it.each(['express.js', 'fastify.js', 'koa.js', 'http.js', 'cluster.js'])('node examples/%s prints and answers the real address of each request', async (example) => {
    const running = await run(example, { WORKERS: '2' });
    try {
      const { body, localPort } = await curl(running.port);
      expect(body).toMatch(new RegExp(`^hello 127\\.0\\.0\\.1:${localPort} \\(peer\\)`));
      // The example printed it as well (the cluster's worker prints through the primary's stdout).
      const deadline = Date.now() + 3000;
      while (!running.lines.some((l) => l.includes(`from 127.0.0.1:${localPort} (peer)`)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(running.lines.find((l) => l.includes(`from 127.0.0.1:${localPort} `))).toMatch(
        new RegExp(`GET /hello from 127\\.0\\.0\\.1:${localPort} \\(peer\\)`),
      );
      // No node-toa warning: the addon loaded and the listening socket saves SYNs.
      expect(running.stderr()).toBe('');
    } finally {
      await stop(running);
    }
  });

  it('node examples/proxy-protocol.js reads the header curl --haproxy-protocol sends, and closes a connection without one', async () => {
    const running = await run('proxy-protocol.js');
    try {
      const { body, localPort } = await curl(running.port, ['--haproxy-protocol']);
      expect(body).toBe(`hello 127.0.0.1:${localPort} (proxy-protocol)\n`);
      const deadline = Date.now() + 3000;
      while (!running.lines.some((l) => l.includes(`:${localPort} `)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(running.lines.find((l) => l.includes(`:${localPort} `))).toBe(
        `GET /hello from 127.0.0.1:${localPort} (proxy-protocol via 127.0.0.1 v1 PROXY)`,
      );
      // Required: without a header the trusted peer's connection is closed (curl: empty reply).
      await expect(curl(running.port)).rejects.toThrow(/Empty reply|reset|closed/i);
    } finally {
      await stop(running);
    }
  });
});
