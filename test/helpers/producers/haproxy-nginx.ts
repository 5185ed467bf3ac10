// Real PROXY protocol producers for the tests: HAProxy and nginx (Debian packages, installed by
// .ci/run) started as child processes with a generated config in a temporary directory, on
// loopback ports, in front of Node servers the test already listens with. Nothing goes to /etc or
// /run: config, pid, certificates and logs stay in the temporary directory, removed at stop().
//
//   const h = await startHaproxy([{ name: 'v2', backend: port, server: 'send-proxy-v2' }]);
//   h.port('v2')  // the frontend's port: connect here (from 127.0.0.2 to tell client and proxy apart)
//   await h.stop();
//
// Both run in the foreground (haproxy -db; nginx daemon off + master_process off), so the child is
// the producer itself and SIGTERM (then SIGKILL) stops it. Readiness is read from /proc/net/tcp
// (a LISTEN socket on every frontend port) rather than by connecting, which would make the
// producer open a backend connection the test did not ask for.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { realProcess } from '../process/real-process';
import { firstMissing, type Missing } from '../jest/requirements';
import { selfSignedCert } from '../sockets/tls-cert';

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 2000;
const START_ATTEMPTS = 3; // a free port picked here can be taken by another process before the bind
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

// ---- what the machine has ----

/** Debian puts both in /usr/sbin, which a non-root PATH (or a CI's) may not name. */
export function binary(name: 'haproxy' | 'nginx'): string {
  const sbin = `/usr/sbin/${name}`;
  return fs.existsSync(sbin) ? sbin : name;
}

function versionOf(cmd: string, args: string[]): { out: string } | { error: string } {
  try {
    // nginx -v prints to stderr; haproxy -v to stdout.
    const out = execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000, encoding: 'utf8' });
    return { out };
  } catch (error) {
    const e = error as { code?: string; stderr?: string; status?: number };
    if (e.code === 'ENOENT') return { error: `${cmd} is not installed (apt-get install ${cmd === 'nginx' ? 'nginx libnginx-mod-stream' : path.basename(cmd)})` };
    if (e.status === 0 || e.stderr) return { out: e.stderr ?? '' };
    return { error: `${cmd} ${args.join(' ')} failed: ${String(error)}` };
  }
}

function openssl(): Missing {
  const v = versionOf('openssl', ['version']);
  return 'error' in v ? v.error : null;
}

/** Why HAProxy cannot be started here, or null. */
export function haproxyMissing(): Missing {
  const v = versionOf(binary('haproxy'), ['-v']);
  return firstMissing('error' in v ? v.error : null, openssl());
}

/** Why nginx with its stream module cannot be started here, or null. */
export function nginxMissing(): Missing {
  const v = versionOf(binary('nginx'), ['-v']);
  if ('error' in v) return v.error;
  if (!fs.existsSync(NGINX_STREAM_MODULE)) return `${NGINX_STREAM_MODULE} is missing (apt-get install libnginx-mod-stream)`;
  return openssl();
}

/** Why curl cannot be run here, or null. */
export function curlMissing(): Missing {
  const v = versionOf('curl', ['--version']);
  return 'error' in v ? v.error : null;
}

// ---- ports ----

/** A loopback port nothing listens on right now (the kernel's pick for port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The TCP ports in LISTEN state, from /proc/net/tcp and tcp6. */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue;
      ports.add(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

// ---- certificates ----

export interface ProducerCerts {
  /** The server certificate (selfSignedCert(): 127.0.0.1, ::1, localhost), PEM. */
  cert: string;
  key: string;
  /** cert + key in one file, as HAProxy's `crt` wants it. */
  serverPem: string;
  /** A self-signed client certificate with CN `clientCn`, its key, and its file (also the CA file). */
  clientCn: string;
  clientCert: string;
  clientKey: string;
  clientCertFile: string;
  clientKeyFile: string;
  serverCertFile: string;
}

function writeCerts(dir: string, clientCn: string): ProducerCerts {
  const { key, cert } = selfSignedCert();
  const serverPem = path.join(dir, 'server.pem');
  const serverCertFile = path.join(dir, 'server-cert.pem');
  fs.writeFileSync(serverPem, cert + key, { mode: 0o600 });
  fs.writeFileSync(serverCertFile, cert);
  const clientKeyFile = path.join(dir, 'client-key.pem');
  const clientCertFile = path.join(dir, 'client-cert.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', clientKeyFile, '-out', clientCertFile, '-days', '2', '-subj', `/CN=${clientCn}`,
    ],
    { stdio: 'pipe', timeout: 20000 },
  );
  return {
    cert,
    key,
    serverPem,
    serverCertFile,
    clientCn,
    clientCert: fs.readFileSync(clientCertFile, 'utf8'),
    clientKey: fs.readFileSync(clientKeyFile, 'utf8'),
    clientCertFile,
    clientKeyFile,
  };
}

// ---- a running producer ----

export interface Producer {
  readonly kind: 'haproxy' | 'nginx';
  readonly dir: string;
  readonly config: string;
  readonly certs: ProducerCerts;
  readonly pid: number;
  /** The port of the frontend named `name`. */
  port(name: string): number;
  /** What the producer wrote to stderr (its log) so far. */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<RunningProducer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test file ends without stop(): the real process's exit (jest's copy of
  // `process` never fires it). Synchronous: kill, remove the directory.
  realProcess().on('exit', () => {
    for (const p of running) p.killNow();
  });
}

class RunningProducer implements Producer {
  private stderr = '';
  private stopped: Promise<void> | undefined;

  constructor(
    readonly kind: 'haproxy' | 'nginx',
    readonly dir: string,
    readonly config: string,
    readonly certs: ProducerCerts,
    private readonly child: ChildProcess,
    private readonly ports: Map<string, number>,
  ) {
    child.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 1 << 20) this.stderr += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      if (this.stderr.length < 1 << 20) this.stderr += d.toString();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  port(name: string): number {
    const p = this.ports.get(name);
    if (p === undefined) throw new RangeError(`${this.kind}: no frontend named '${name}' (have ${[...this.ports.keys()].join(', ')})`);
    return p;
  }

  log(): string {
    return this.stderr;
  }

  exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  killNow(): void {
    if (!this.exited()) this.child.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        running.delete(this);
        fs.rmSync(this.dir, { recursive: true, force: true });
        resolve();
      };
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      if (this.exited()) return done();
      this.child.once('exit', done);
      this.child.kill('SIGTERM');
    });
    return this.stopped;
  }

  /** Resolves once every frontend port listens; rejects when the child exits first or in time. */
  async ready(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const wanted = [...this.ports.values()];
    for (;;) {
      if (this.exited()) throw new Error(`${this.kind} exited (${this.child.exitCode ?? this.child.signalCode}) before listening:\n${this.stderr}`);
      const listening = listeningPorts();
      if (wanted.every((p) => listening.has(p))) return;
      if (Date.now() > deadline) throw new Error(`${this.kind} did not listen on ${wanted.join(', ')} within ${START_TIMEOUT_MS} ms:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function launch(
  kind: 'haproxy' | 'nginx',
  names: string[],
  clientCn: string,
  render: (ports: Map<string, number>, dir: string, certs: ProducerCerts) => { config: string; file: string; argv: string[] },
): Promise<Producer> {
  installExitHook();
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `node-toa-${kind}-`));
    const certs = writeCerts(dir, clientCn);
    const ports = new Map<string, number>();
    for (const name of names) {
      if (ports.has(name)) throw new RangeError(`${kind}: frontend name '${name}' given twice`);
      ports.set(name, await freePort());
    }
    const { config, file, argv } = render(ports, dir, certs);
    fs.writeFileSync(file, config);
    const child = spawn(argv[0], argv.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const producer = new RunningProducer(kind, dir, config, certs, child, ports);
    running.add(producer);
    try {
      await producer.ready();
      return producer;
    } catch (error) {
      lastError = error;
      await producer.stop();
      // Only a port taken in between is worth another try; a bad config fails the same way again.
      if (!/Address already in use|cannot bind|bind\(\) to .* failed/i.test(producer.log())) break;
    }
  }
  throw lastError;
}

// ---- HAProxy ----

export interface HaproxyFrontend {
  /** Names the frontend (port(name)) and its backend. */
  name: string;
  /** The Node server's port on 127.0.0.1. */
  backend: number;
  /** What follows `server s 127.0.0.1:<backend>`: `send-proxy`, `send-proxy-v2 proxy-v2-options ...`. */
  server: string;
  /**
   * TLS on the bind line: 'terminate' decrypts here with the server certificate and asks for a
   * client certificate (verify optional, the client certificate as CA), so the SSL TLV has a CN.
   * Without it the frontend is plain TCP, which also passes TLS through untouched.
   */
  tls?: 'terminate';
  /** More options on the bind line, e.g. `alpn http/1.1` (with `tls: 'terminate'`). */
  bind?: string;
  /** More lines for the frontend (`unique-id-format ...`) and for the backend. */
  frontendLines?: string[];
  backendLines?: string[];
}

export function haproxyConfig(frontends: HaproxyFrontend[], ports: Map<string, number>, certs: ProducerCerts): string {
  const lines = [
    'global',
    '  log stderr format raw local0 info',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
    '  timeout check 1s',
  ];
  for (const f of frontends) {
    const tls = f.tls === 'terminate' ? ` ssl crt ${certs.serverPem} verify optional ca-file ${certs.clientCertFile}` : '';
    const more = f.bind === undefined ? '' : ` ${f.bind}`;
    lines.push(`frontend ${f.name}`, `  bind 127.0.0.1:${ports.get(f.name)}${tls}${more}`, ...(f.frontendLines ?? []).map((l) => `  ${l}`), `  default_backend be_${f.name}`);
    lines.push(`backend be_${f.name}`, ...(f.backendLines ?? []).map((l) => `  ${l}`), `  server s 127.0.0.1:${f.backend} ${f.server}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Starts one HAProxy with these frontends; each forwards to its Node backend on 127.0.0.1. */
export function startHaproxy(frontends: HaproxyFrontend[], options: { clientCn?: string } = {}): Promise<Producer> {
  return launch('haproxy', frontends.map((f) => f.name), options.clientCn ?? 'client.example', (ports, dir, certs) => {
    const file = path.join(dir, 'haproxy.cfg');
    return { config: haproxyConfig(frontends, ports, certs), file, argv: [binary('haproxy'), '-db', '-f', file] };
  });
}

// ---- nginx ----

export interface NginxFrontend {
  name: string;
  backend: number;
  /** More lines in the stream `server { }` block; `proxy_protocol on;` is always there. */
  lines?: string[];
}

export function nginxConfig(frontends: NginxFrontend[], ports: Map<string, number>, dir: string): string {
  const lines = [
    `load_module ${NGINX_STREAM_MODULE};`,
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    'error_log stderr info;',
    'events { worker_connections 256; }',
    'stream {',
  ];
  for (const f of frontends) {
    lines.push(
      '  server {',
      `    listen 127.0.0.1:${ports.get(f.name)};`,
      `    proxy_pass 127.0.0.1:${f.backend};`,
      '    proxy_protocol on;',
      '    proxy_connect_timeout 2s;',
      ...(f.lines ?? []).map((l) => `    ${l}`),
      '  }',
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Starts one nginx (stream module) with these frontends, each `proxy_protocol on`. */
export function startNginx(frontends: NginxFrontend[]): Promise<Producer> {
  return launch('nginx', frontends.map((f) => f.name), 'client.example', (ports, dir) => {
    const file = path.join(dir, 'nginx.conf');
    // -e: the error log before the config is read (else <prefix>/logs/error.log); -p: the prefix.
    return { config: nginxConfig(frontends, ports, dir), file, argv: [binary('nginx'), '-e', 'stderr', '-p', dir, '-c', file] };
  });
}

/** describeNeeds' cleanUp: stops every producer started inside the block. */
export function producersCleanup(): { start(): void; end(): Promise<void> } {
  let before = new Set<RunningProducer>();
  return {
    start() {
      before = new Set(running);
    },
    async end() {
      await Promise.all([...running].filter((p) => !before.has(p)).map((p) => p.stop()));
    },
  };
}
