#!/usr/bin/env node
// `npm run bench`: builds what the benchmark needs, runs each part in its own process, prints the
// machine and one table per part (medians and ratios). BENCH_QUICK=1 (or --quick) for a ~20 s
// smoke run; the full run takes 2-3 minutes. See bench/README.md for how to read the tables.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'build-bench');
const PARTS = ['micro', 'floor', 'preload', 'preload-http', 'http', 'proxy', 'tap', 'udp'];

function parseArgs(argv) {
  const args = { quick: process.env.BENCH_QUICK === '1', only: PARTS, markdown: false };
  for (const arg of argv) {
    if (arg === '--quick') args.quick = true;
    else if (arg === '--markdown') args.markdown = true;
    else if (arg.startsWith('--only=')) {
      args.only = arg.slice(7).split(',');
      for (const part of args.only) {
        if (!PARTS.includes(part)) throw new RangeError(`--only: unknown part '${part}' (parts: ${PARTS.join(', ')})`);
      }
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: npm run bench [-- --quick] [-- --only=${PARTS.join(',')}] [-- --markdown]\n`);
      process.exit(0);
    } else throw new RangeError(`unknown argument '${arg}' (try --help)`);
  }
  return args;
}

// ---- build ----

// lib/ and dist/ are folders of folders.
function newestMtime(dir, ext) {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(file, ext));
    else if (entry.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

function build() {
  fs.mkdirSync(OUT, { recursive: true });
  const addonBuilt =
    fs.existsSync(path.join(ROOT, 'build', 'Release', 'node_toa.node')) || fs.existsSync(path.join(ROOT, 'prebuilds'));
  if (!addonBuilt) run('npm', ['run', 'build:native']);
  if (newestMtime(path.join(ROOT, 'lib'), '.ts') > newestMtime(path.join(ROOT, 'dist'), '.js')) {
    run('npm', ['run', 'build:ts']);
  }
  // The bench sources are TypeScript (type-checked by `npm run typecheck`); transpile them only.
  const ts = require('typescript');
  for (const name of fs.readdirSync(__dirname)) {
    if (!name.endsWith('.ts')) continue;
    const source = fs.readFileSync(path.join(__dirname, name), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: name,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    fs.writeFileSync(path.join(OUT, name.replace(/\.ts$/, '.js')), outputText);
  }
  // The sock_ops harness of the tests (clients whose kernel writes TOA), for the preload parts:
  // transpiled beside the parts, its C sources copied (it builds into build/sockops either way).
  const helpers = path.join(OUT, 'helpers');
  fs.mkdirSync(path.join(helpers, 'sockops'), { recursive: true });
  for (const name of ['sockops.ts', 'sockops-build.ts', 'real-process.ts', 'requirements.ts']) {
    const source = fs.readFileSync(path.join(ROOT, 'test', 'helpers', name), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: name,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    fs.writeFileSync(path.join(helpers, name.replace(/\.ts$/, '.js')), outputText);
  }
  for (const name of fs.readdirSync(path.join(ROOT, 'test', 'helpers', 'sockops'))) {
    fs.copyFileSync(path.join(ROOT, 'test', 'helpers', 'sockops', name), path.join(helpers, 'sockops', name));
  }
  const floor = path.join(OUT, 'syscall-floor');
  const floorSource = path.join(__dirname, 'syscall-floor.c');
  if (!fs.existsSync(floor) || fs.statSync(floor).mtimeMs < fs.statSync(floorSource).mtimeMs) {
    run('cc', ['-O2', '-Wall', '-o', floor, floorSource]);
  }
}

function run(cmd, args) {
  process.stderr.write(`bench: ${cmd} ${args.join(' ')}\n`);
  execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

// ---- parts ----

// Each part prints one JSON line on stdout; its progress goes to our stderr.
function part(file, args, env, timeoutSeconds) {
  const result = spawnSync(file, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    timeout: timeoutSeconds * 1000,
    killSignal: 'SIGKILL',
  });
  if (result.error) throw new Error(`${path.basename(file)} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} exited with ${result.status}`);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

function nodePart(name, quick, timeoutSeconds, env = {}) {
  return part(process.execPath, [path.join(OUT, `${name}.js`)], { ...(quick ? { BENCH_QUICK: '1' } : {}), ...env }, timeoutSeconds);
}

// ---- output ----

function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpu = line.split(':')[1].trim();
  } catch {
    // not Linux: os.cpus() is all there is
  }
  let mitigations = '';
  try {
    mitigations = fs.readFileSync('/sys/devices/system/cpu/vulnerabilities/meltdown', 'utf8').trim();
  } catch {
    // no sysfs
  }
  return {
    cpu,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    meltdown: mitigations,
  };
}

function fmt(value, digits = 0) {
  if (typeof value !== 'number' || Number.isNaN(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pct(ratio) {
  return `${fmt(ratio * 100, 1)} %`;
}

function table(title, headers, rows, markdown) {
  const out = [];
  if (markdown) {
    out.push(`### ${title}`, '', `| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`);
    for (const row of rows) out.push(`| ${row.join(' | ')} |`);
  } else {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
    out.push(title, line(headers), widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of rows) out.push(line(row));
  }
  return `${out.join('\n')}\n`;
}

function verdict(ok) {
  return ok ? 'met' : 'MISSED';
}

function microTables(micro, floor, md) {
  const rows = [
    ['realRemoteAddress(), first call (saved SYN read)', fmt(micro.first.median), pct(micro.first.median / floor.both.median)],
    ['realRemoteAddress(), first call, a node-toa:resolve subscriber', fmt(micro.firstSubscribed.median), pct(micro.firstSubscribed.median / floor.both.median)],
    ['realRemoteAddress(), cached', fmt(micro.cached.median, 1), pct(micro.cached.median / floor.both.median)],
    ['socket.remoteAddress, first access (getpeername)', fmt(micro.remoteFirst.median), pct(micro.remoteFirst.median / floor.both.median)],
    ['socket.remoteAddress, cached', fmt(micro.remoteCached.median, 1), pct(micro.remoteCached.median / floor.both.median)],
    ['one trivial syscall via the addon (reference)', fmt(micro.napiSyscall.median), pct(micro.napiSyscall.median / floor.both.median)],
    ['C: getsockopt(TCP_SAVED_SYN) + getpeername (floor)', fmt(floor.both.median), '100.0 %'],
    ['C: getsockopt(TCP_SAVED_SYN) alone', fmt(floor.savedsyn.median), pct(floor.savedsyn.median / floor.both.median)],
    ['C: getpeername alone', fmt(floor.peername.median), pct(floor.peername.median / floor.both.median)],
  ];
  let text = table(
    `Micro: ns per connection, median of ${micro.rounds} batches of ${micro.batch} fresh loopback connections (C: ${floor.rounds} batches)`,
    ['measure', 'ns', 'vs floor'],
    rows,
    md,
  );
  text += `\n  target first call <= floor (${fmt(floor.both.median)} ns): ${verdict(micro.first.median <= floor.both.median)}` +
    ` (${fmt(micro.first.median / micro.remoteFirst.median, 2)}x socket.remoteAddress's first access)\n`;
  text += `  target cached call < 50 ns: ${verdict(micro.cached.median < 50)}\n`;
  return text;
}

function preloadTable(plain, toa, md) {
  const x = (r) => `${fmt(r, 2)}x`;
  const rows = [
    ['first read, with the preload (the saved SYN read; loopback, no TOA)', fmt(plain.first.median), x(plain.ratio.median)],
    ["first read, Node's own (getpeername), the same kind of connection", fmt(plain.nodeFirst.median), '1.00x'],
  ];
  if (toa && !toa.skipped) {
    rows.push(
      ['first read, with the preload, a trusted TOA in the SYN (the client)', fmt(toa.first.median), x(toa.ratio.median)],
      ["first read, Node's own, those connections (the proxy)", fmt(toa.nodeFirst.median), '1.00x'],
    );
  }
  rows.push(
    ['cached read, with the preload', fmt(plain.cached.median, 1), ''],
    ["cached read, Node's own", fmt(plain.nodeCached.median, 1), ''],
  );
  let text = table(
    `Preload: socket.remoteAddress, ns per connection, median of ${plain.rounds} batches of ${plain.batch} fresh loopback connections ` +
      `(after ${plain.warmup} warm-up rounds), with and without the preload interleaved in one process (x: median of the per-round ratios)`,
    ['read', 'ns', 'vs Node'],
    rows,
    md,
  );
  const ratios = [plain.ratio.median, ...(toa && !toa.skipped ? [toa.ratio.median] : [])];
  text += `\n  target first read <= 1.0x Node's first remoteAddress: ${verdict(Math.max(...ratios) <= 1.0)} (${ratios.map((r) => x(r)).join(', ')})\n`;
  text += `  target cached read < 50 ns: ${verdict(plain.cached.median < 50)}\n`;
  if (toa && toa.skipped) text += `  with TOA: skipped (${toa.skipped})\n`;
  return text;
}

function preloadHttpTable(result, md) {
  if (result.skipped) return `Preload, HTTP: skipped (${result.skipped})\n`;
  const row = (label, r) => [
    label,
    `${fmt(r.cpuPlain, 1)} / ${fmt(r.cpuOther, 1)}`,
    `${r.cpuDiff >= 0 ? '+' : ''}${fmt(r.cpuDiff, 1)}`,
    `${r.cpuRatio >= 1 ? '+' : ''}${fmt((r.cpuRatio - 1) * 100, 1)} %`,
    pct(r.rateRatio),
    `${r.toa} / ${r.requests}`,
    String(r.failures),
  ];
  return table(
    `Preload, HTTP: a new connection per request, TOA in every SYN (conn-load.js in a ToaCgroup, ${result.parallel} at once, ` +
      `${result.count} requests per server and round), a plain node:http server against the same with -r node-toa/preload, ` +
      `both loaded at once, median of ${result.rounds} rounds`,
    ['pair', 'server CPU us/req (plain / other)', 'us/req', 'CPU', 'req/s ratio', 'answered the TOA client', 'errors'],
    [row('plain vs -r node-toa/preload', result.preload), row('control: plain vs plain', result.control)],
    md,
  ) + '\n  control: two identical plain servers measured the same way; its distance from 0 is the noise here\n';
}

const HTTP_TARGET = { 'keep-alive': 0.99, close: 0.97 };

// What the micro bench predicts for a new connection per request: the first call's cost added to
// the plain server's CPU per request (the server is CPU-bound).
function predicted(result, micro) {
  if (!micro) return '';
  const firstUs = micro.first.median / 1000;
  const parts = result.cells
    .filter((c) => c.mode === 'close' && c.framework !== 'control')
    .map((c) => `${c.framework} ${pct(c.cpuPlain / (c.cpuPlain + firstUs))}`);
  return `\n  expected from the micro bench (first call ${fmt(firstUs, 1)} us per connection on top of the plain server's CPU per request), new connection per request: ${parts.join(', ')}`;
}

function httpTable(result, md, micro) {
  const rows = result.cells.map((c) => [
    c.framework === 'control' ? 'control: http vs http' : c.framework,
    c.mode === 'close' ? 'new connection per request' : 'keep-alive',
    fmt(c.plain),
    fmt(c.toa),
    pct(c.ratio),
    c.framework === 'control' ? '(noise)' : `>= ${pct(HTTP_TARGET[c.mode])} ${verdict(c.ratio >= HTTP_TARGET[c.mode])}`,
    `${fmt(c.cpuPlain, 1)} / ${fmt(c.cpuToa, 1)}`,
    `${c.cpuRatio >= 1 ? '+' : ''}${fmt((c.cpuRatio - 1) * 100, 1)} %`,
    String(c.errors),
  ]);
  return table(
    `HTTP: req/s, ${result.method === 'paired' ? 'both servers loaded at once' : 'one server after the other'}` +
      `${result.pinned ? ' (servers on CPU 1, autocannon on CPU 0)' : ''}, ` +
      `medians of ${result.rounds} alternating ${result.seconds} s runs, ${result.connections} connections each ` +
      '(ratio: median of pairwise ratios; server CPU per request without / with, and the median pairwise difference)',
    ['server', 'mode', 'without', 'with node-toa', 'ratio', 'target', 'server CPU us/req', 'CPU', 'errors'],
    rows,
    md,
  ) +
    `\n  node-toa via: ${Object.entries(result.via).map(([k, v]) => `${k}: ${v}`).join(', ')}` +
    '\n  control: two identical plain http servers measured the same way; its distance from 100 % is the noise here' +
    `${predicted(result, micro)}\n`;
}

function proxyTable(result, md, micro) {
  const perConnection = {
    plain: micro ? `${fmt(micro.remoteFirst.median)} ns` : '',
    toa: micro ? `${fmt(micro.first.median)} ns` : '',
    'proxy-v1': `${fmt(result.parseNs['proxy-v1'])} ns`,
    'proxy-v2': `${fmt(result.parseNs['proxy-v2'])} ns`,
  };
  // The gate and proxywrap parse inside the server's data path: no cost of their own to time apart.
  const rows = result.rows.map((r) => [
    r.label,
    perConnection[r.name] ?? '',
    fmt(r.rate),
    fmt(r.cpuPerConnection, 1),
    `${r.cpuVsPlain >= 0 ? '+' : ''}${fmt(r.cpuVsPlain, 1)}`,
    fmt(r.p50, 2),
    String(r.errors),
  ]);
  return table(
    `Passing the client address: ${fmt(result.rate)} conn/s to each of the ${result.rows.length} servers at once` +
      `${result.pinned ? ' (servers on CPU 1, client on CPU 0)' : ''}, ${result.seconds} s, ` +
      `median of ${result.rounds} rounds; server CPU per connection (user+system), and vs plain: the median over rounds of the difference to plain in the same round. ` +
      `Address cost: the work per connection on its own (micro: first call; PROXY: find + parse the header)`,
    ['how the server learns the client', 'address cost', 'conn/s', 'server CPU us/conn', 'vs plain', 'p50 ms', 'errors'],
    rows,
    md,
  );
}

function tapTable(result, md) {
  const rows = result.rows.map((r) => [
    r.label,
    fmt(r.rate),
    fmt(r.cpuUsPerConnection, 1),
    r.variant === 'syn' ? '100.0 %' : `${fmt(result.ratio * 100, 1)} %`,
    `${fmt(result.perCallNs[r.variant])} ns`,
    String(r.errors + r.wrong),
    r.variant === 'syn' ? '-' : String(r.drops),
  ]);
  return table(
    `ACK tap: connections/s on loopback, one request per connection, ${result.concurrency} in flight, ` +
      `median of ${result.rounds} alternating ${result.seconds} s runs`,
    ['server', 'conn/s', 'server CPU us/conn', 'vs SYN only', 'first realRemoteAddress()', 'errors', 'tap drops'],
    rows,
    md,
  );
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  build();
  const m = machine();
  const out = [];
  const header = `node-toa benchmark${args.quick ? ' (quick: BENCH_QUICK=1, indicative only)' : ''}\n` +
    `machine: ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}` +
    (m.meltdown ? `\nmeltdown mitigation: ${m.meltdown}` : '') + '\n';
  process.stdout.write(`${header}\n`);
  out.push(header);
  const want = new Set(args.only);
  const results = {};
  if (want.has('micro') || want.has('floor')) {
    const rounds = args.quick ? '20' : '80';
    results.floor = part(path.join(OUT, 'syscall-floor'), ['50', rounds], {}, 60);
    results.micro = nodePart('micro', args.quick, 120);
    const text = microTables(results.micro, results.floor, args.markdown);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('preload')) {
    results.preload = nodePart('preload', args.quick, 240, { BENCH_PRELOAD_TOA: '0' });
    results.preloadToa = nodePart('preload', args.quick, 240, { BENCH_PRELOAD_TOA: '1' });
    const text = preloadTable(results.preload, results.preloadToa, args.markdown);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('preload-http')) {
    results.preloadHttp = nodePart('preload-http', args.quick, 300);
    const text = preloadHttpTable(results.preloadHttp, args.markdown);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('http')) {
    results.http = nodePart('http', args.quick, 240);
    const text = httpTable(results.http, args.markdown, results.micro);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('proxy')) {
    results.proxy = nodePart('proxy-protocol', args.quick, 120);
    const text = proxyTable(results.proxy, args.markdown, results.micro);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('tap')) {
    results.tap = nodePart('tap', args.quick, 240);
    const text = tapTable(results.tap, args.markdown);
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  if (want.has('udp')) {
    results.udp = nodePart('udp', args.quick, 300);
    const u = results.udp;
    const text = table(
      `UDP: server CPU ns per datagram (receive + echo), median of ${u.rounds} rounds of ${fmt(u.batch)} datagrams per variant, ` +
        `variants interleaved (order rotated per round), ${u.window} in flight${u.pinned ? ', server on CPU 1, client on CPU 0' : ''}; ` +
        `vs plain: median over rounds of the difference to the plain socket in the same round${u.lost ? `; ${u.lost} datagrams lost` : ''}`,
      ['socket', 'ns/datagram', 'vs plain'],
      u.rows.map((r) => [r.label, fmt(r.ns), r.variant === 'plain' ? '' : `${r.vsPlain >= 0 ? '+' : ''}${fmt(r.vsPlain)}`]),
      args.markdown,
    ) + '\n  control: a second plain socket measured the same way; its distance from 0 is the noise here\n';
    process.stdout.write(`${text}\n`);
    out.push(text);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  process.stdout.write(`total ${seconds} s\n`);
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ machine: m, quick: args.quick, results }, null, 2));
}

try {
  main();
} catch (error) {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exit(1);
}
