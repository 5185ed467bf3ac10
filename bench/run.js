#!/usr/bin/env node
// `npm run bench`: builds what the benchmark needs, runs each part in its own process, prints the
// machine and one table per part (medians and ratios). BENCH_QUICK=1 (or --quick) for a ~30 s
// smoke run (on a quiet machine); the full run takes several minutes. See bench/README.md for how to read the tables.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'build-bench');
const PARTS = ['micro', 'floor', 'preload', 'first-read', 'preload-http', 'profile', 'cluster', 'http', 'proxy', 'tap', 'udp'];

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
  // The sock_ops harness of the tests (clients whose kernel writes TOA), their reader of a
  // process's BPF links and their watch of a child's lines, for the preload parts: transpiled
  // beside the parts in the same folders, its C sources copied (it builds into build/sockops
  // either way).
  const helpers = path.join(OUT, 'helpers');
  fs.mkdirSync(path.join(helpers, 'sockops'), { recursive: true });
  for (const name of ['sockops/index.ts', 'sockops/build.ts', 'process/real-process.ts', 'process/leftovers.ts', 'process/taps.ts', 'process/line-process.ts', 'jest/requirements.ts']) {
    const source = fs.readFileSync(path.join(ROOT, 'test', 'helpers', name), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: name,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    fs.mkdirSync(path.dirname(path.join(helpers, name)), { recursive: true });
    fs.writeFileSync(path.join(helpers, name.replace(/\.ts$/, '.js')), outputText);
  }
  for (const name of fs.readdirSync(path.join(ROOT, 'test', 'helpers', 'sockops'))) {
    if (name.endsWith('.c')) fs.copyFileSync(path.join(ROOT, 'test', 'helpers', 'sockops', name), path.join(helpers, 'sockops', name));
  }
  // The C tools: the syscall floor (micro) and the BPF programs' run time (preload-http).
  for (const tool of ['syscall-floor', 'bpf-run-time']) {
    const binary = path.join(OUT, tool);
    const source = path.join(__dirname, `${tool}.c`);
    if (!fs.existsSync(binary) || fs.statSync(binary).mtimeMs < fs.statSync(source).mtimeMs) {
      run('cc', ['-O2', '-Wall', '-o', binary, source]);
    }
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

function x(ratio) {
  return `${fmt(ratio, 2)}x`;
}

// The middle half of the per-round values: how far one round's ratio wanders.
function spread(samples, format) {
  const list = (samples ?? []).filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (list.length === 0) return 'n/a';
  const at = (q) => list[Math.min(list.length - 1, Math.floor(q * list.length))];
  return `${format(at(0.25))} - ${format(at(0.75))}`;
}

const TARGET = { microFirst: 1.2, preloadFirst: 1.0, cachedNs: 50, preloadHttpCpu: 0.03 };

// Where the preload's cost goes (bench/profile.ts): node-toa's own code, in points of server CPU,
// beside the whole difference the same run measured.
const PROFILE_LABELS = {
  syn: 'the SYN (NODE_TOA_ACK=off)',
  ack: 'the handshake ACK (NODE_TOA_ACK=on: sock_ops)',
  'ack-packet': 'the handshake ACK, packet sockets (NODE_TOA_ACK=packet)',
};

function profileTable(result, md) {
  if (result.skipped) return `Profile: skipped: ${result.skipped}\n`;
  const pct = (v) => `${fmt(v, 2)} %`;
  const pts = (v) => `${v >= 0 ? '+' : ''}${fmt(v, 2)}`;
  return table(
    `Profile: where the preload's cost per connection goes: a plain node:http app and the same under -r node-toa/preload, ` +
      `loaded at once (${fmt(result.count)} requests each, TOA written by the clients' kernel), sampled by perf; ` +
      `the share of each server's samples whose call stack holds the read`,
    ['TOA in', 'CPU us/req plain / preload', 'measured', "node-toa's read (_getpeername)", 'tap drain', "Node's getpeername (plain)", "node-toa's own code, points"],
    result.rows.map((r) => {
      const own = r.preload.read + r.preload.drain - r.plain.nodeRead;
      return [
        PROFILE_LABELS[r.road],
        `${fmt(r.cpuPlain, 1)} / ${fmt(r.cpuPreload, 1)}`,
        `${pts((100 * (r.cpuPreload - r.cpuPlain)) / r.cpuPlain)} %`,
        pct(r.preload.read),
        pct(r.preload.drain),
        pct(r.plain.nodeRead),
        pts(own),
      ];
    }),
    md,
  ) + "\n  node-toa's own code: its read and drain minus the getpeername it replaces; the rest of the measured difference is Node's own code running slower after it\n";
}

// The ACK road's program under a node:cluster app (bench/cluster.ts): one per cgroup, whatever the
// number of workers.
function clusterTable(result, md) {
  if (result.skipped) return `Cluster: skipped: ${result.skipped}\n`;
  return table(
    `Cluster: an unmodified node:cluster app under -r node-toa/preload (NODE_TOA_ACK=on), a new connection per request, ` +
      `the clients' kernel writing TOA into the handshake ACK (${fmt(result.count)} requests per app and round, ${result.rounds} rounds, ` +
      `the apps in turn), the kernel's run time of the sock_ops programs the app's processes hold`,
    ['workers', 'clients (loopback)', 'programs attached', 'sock_ops program, kernel us/conn', 'middle half of rounds', 'runs/conn', 'answered right', 'errors'],
    result.rows.map((r) => [
      String(r.workers),
      r.trusted ? 'a trusted proxy' : 'untrusted',
      String(r.programs),
      fmt(r.usMedian, 2),
      spread(r.us, (v) => fmt(v, 2)),
      fmt(r.runs, 1),
      `${r.right} / ${r.checked} ${r.trusted ? 'client' : 'peer'}`,
      String(r.failures),
    ]),
    md,
  ) +
    '\n  the processes of a cgroup share one program: a connection runs it once however many workers tap the port;' +
    '\n  an untrusted sender\'s connection (one straight at the server, past the proxy) gets no socket storage\n';
}

function microTables(micro, floor, md) {
  const loop = micro.loopback;
  const rows = [
    ['realRemoteAddress(), first call (saved SYN read)', fmt(loop.first.median), pct(loop.first.median / floor.both.median)],
    ['realRemoteAddress(), first call, a node-toa:resolve subscriber', fmt(loop.firstSubscribed.median), pct(loop.firstSubscribed.median / floor.both.median)],
    ['realRemoteAddress(), cached', fmt(loop.cached.median, 1), pct(loop.cached.median / floor.both.median)],
    ['socket.remoteAddress, first access (getpeername)', fmt(loop.remoteFirst.median), pct(loop.remoteFirst.median / floor.both.median)],
    ['socket.remoteAddress, cached', fmt(loop.remoteCached.median, 1), pct(loop.remoteCached.median / floor.both.median)],
    ['one trivial syscall via the addon (reference)', fmt(loop.napiSyscall.median), pct(loop.napiSyscall.median / floor.both.median)],
    ['C: getsockopt(TCP_SAVED_SYN) + getpeername (floor)', fmt(floor.both.median), '100.0 %'],
    ['C: getsockopt(TCP_SAVED_SYN) alone', fmt(floor.savedsyn.median), pct(floor.savedsyn.median / floor.both.median)],
    ['C: getpeername alone', fmt(floor.peername.median), pct(floor.peername.median / floor.both.median)],
  ];
  let text = table(
    `Micro: ns per connection, median of ${loop.rounds} batches (after ${loop.warmup} warm-up batches) of ${loop.batch} fresh loopback connections, no tap (C: ${floor.rounds} batches)`,
    ['measure', 'ns', 'vs floor'],
    rows,
    md,
  );
  text += `\n  reference: first call vs the C floor of two syscalls (${fmt(floor.both.median)} ns): ${pct(loop.first.median / floor.both.median)}\n\n`;
  const labels = {
    loopback: 'loopback, no TOA, no tap',
    tap: 'loopback, no TOA, the ACK tap open',
    ack: 'TOA in the handshake ACK, the tap open',
  };
  const ratioRows = [];
  const skipped = [];
  for (const name of ['loopback', 'tap', 'ack']) {
    const m = micro[name];
    if (!m) continue;
    if (m.skipped) {
      skipped.push(`  ${labels[name]}: skipped (${m.skipped})\n`);
      continue;
    }
    ratioRows.push(
      [labels[name], 'realRemoteAddress(), first call', fmt(m.first.median), x(m.ratio.median), spread(m.ratio.samples, x),
        `<= ${x(TARGET.microFirst)} ${verdict(m.ratio.median <= TARGET.microFirst)}`],
      ['', "control: Node's first socket.remoteAddress, another batch (A/A)", fmt(m.remoteAgain.median), x(m.control.median),
        spread(m.control.samples, x), '(noise)'],
      ['', "Node's first socket.remoteAddress (the 1.00x)", fmt(m.remoteFirst.median), '1.00x', '', ''],
      ['', 'realRemoteAddress(), cached', fmt(m.cached.median, 1), '', '', `< ${TARGET.cachedNs} ns ${verdict(m.cached.median < TARGET.cachedNs)}`],
    );
  }
  text += table(
    `Micro: realRemoteAddress() first call against Node's own first socket.remoteAddress, ns per connection, batches of ${loop.batch} fresh ` +
      `connections timed interleaved in one process (ratio: median of the per-round ratios; spread: their middle half), peers trusted (configure)`,
    ['connections', 'read', 'ns', "vs Node's first", 'spread', 'target'],
    ratioRows,
    md,
  );
  return text + skipped.join('');
}

const PRELOAD_LABELS = {
  loopback: 'loopback, no TOA (NODE_TOA_ACK=off)',
  syn: 'TOA in the SYN (NODE_TOA_ACK=off)',
  'syn-tap': 'TOA in the SYN, the tap open (NODE_TOA_ACK=on)',
  ack: 'TOA in the handshake ACK (NODE_TOA_ACK=on: sock_ops)',
  'ack-packet': 'TOA in the handshake ACK, packet sockets (ack.source packet)',
};

function preloadTable(results, md) {
  const rows = [];
  const notes = [];
  let any;
  for (const [name, r] of Object.entries(results)) {
    if (r.skipped) {
      notes.push(`  ${PRELOAD_LABELS[name]}: skipped (${r.skipped})\n`);
      continue;
    }
    any = r;
    const answers = Object.entries(r.sources).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    rows.push(
      [PRELOAD_LABELS[name], 'first read, with the preload', fmt(r.first.median), x(r.ratio.median), spread(r.ratio.samples, x),
        `<= ${x(TARGET.preloadFirst)} ${verdict(r.ratio.median <= TARGET.preloadFirst)}`, answers],
      ['', "control: Node's own first read, another batch (A/A)", fmt(r.nodeAgain.median), x(r.control.median), spread(r.control.samples, x), '(noise)', ''],
      ['', "Node's own first read (getpeername: the 1.00x)", fmt(r.nodeFirst.median), '1.00x', '', '', ''],
      ['', 'cached read, with the preload', fmt(r.cached.median, 1), '', '', `< ${TARGET.cachedNs} ns ${verdict(r.cached.median < TARGET.cachedNs)}`, ''],
      ['', "cached read, Node's own", fmt(r.nodeCached.median, 1), '', '', '', ''],
    );
  }
  if (!any) return `Preload: every mode skipped\n${notes.join('')}`;
  return table(
    `Preload: socket.remoteAddress, ns per connection, ${any.rounds} rounds (after ${any.warmup} warm-up rounds) of four batches of ${any.batch} ` +
      'fresh connections, with and without the preload interleaved in one process (ratio: median of the per-round ratios; spread: their middle half)',
    ['connections', 'read', 'ns', "vs Node's first", 'spread', 'target', 'answers (preload side)'],
    rows,
    md,
  ) + notes.join('');
}

const FIRST_READ_LABELS = {
  loopback: 'loopback, no TOA',
  syn: 'TOA in the SYN',
  ack: 'TOA in the handshake ACK (sock_ops)',
};
const RUNG_LABELS = {
  read: "the addon's read alone (the syscall, its parse, the tap's answer)",
  decode: '+ decoded into the facts',
  decide: '+ decided, counted, kept (the resolver)',
  preload: "the preload's whole first socket.remoteAddress",
};

function firstReadTable(results, md) {
  const rows = [];
  const notes = [];
  let any;
  for (const [name, r] of Object.entries(results)) {
    if (r.skipped) {
      notes.push(`  ${FIRST_READ_LABELS[name]}: skipped (${r.skipped})\n`);
      continue;
    }
    any = r;
    Object.entries(r.rungs).forEach(([rung, v], i) => {
      rows.push([i === 0 ? FIRST_READ_LABELS[name] : '', RUNG_LABELS[rung], fmt(v.ns.median), x(v.ratio.median), spread(v.ratio.samples, x)]);
    });
    rows.push(['', "control: Node's own first read against Node's (A/A)", '', x(r.control.median), spread(r.control.samples, x)]);
    rows.push(['', "Node's own first read (getpeername: the 1.00x)", fmt(r.node.median), '1.00x', '']);
  }
  if (!any) return `First read: every mode skipped\n${notes.join('')}`;
  return table(
    `First read: where the preload's first socket.remoteAddress spends its time, rung by rung, each against Node's own first read on a batch of the same round, ` +
      `ns per connection, ${any.rounds} rounds (after ${any.warmup}) of ${2 * Object.keys(any.rungs).length} batches of ${any.batch} fresh connections ` +
      '(ratio: median of the per-round ratios; spread: their middle half). The first rung is the floor of any reader that decides in JavaScript',
    ['connections', 'read', 'ns', "vs Node's first", 'spread'],
    rows,
    md,
  ) + notes.join('');
}

const ROAD_LABELS = {
  syn: 'TOA in the SYN (NODE_TOA_ACK=off)',
  'syn-tap': 'TOA in the SYN, the tap open (NODE_TOA_ACK=on)',
  ack: 'TOA in the handshake ACK (NODE_TOA_ACK=on: sock_ops)',
  data: 'TOA in the first data packet (NODE_TOA_ACK=on: sock_ops)',
  'ack-packet': 'TOA in the handshake ACK, packet sockets (NODE_TOA_ACK=packet)',
};

function preloadHttpTable(result, md) {
  if (result.skipped) return `Preload, HTTP: skipped (${result.skipped})\n`;
  const signed = (v, digits) => `${v >= 0 ? '+' : ''}${fmt(v, digits)}`;
  const cpuPct = (r) => `${signed((r - 1) * 100, 1)} %`;
  const rows = [];
  for (const road of result.roads) {
    for (const which of ['preload', 'control']) {
      const r = road[which];
      rows.push([
        which === 'preload' ? ROAD_LABELS[road.road] : '',
        which === 'preload' ? 'plain vs -r node-toa/preload' : 'control: plain vs plain (A/A)',
        `${fmt(r.cpuPlain, 1)} / ${fmt(r.cpuOther, 1)}`,
        signed(r.cpuDiff, 1),
        cpuPct(r.cpuRatio),
        `${cpuPct(r.cpuRatioMin)} .. ${cpuPct(r.cpuRatioMax)}`,
        which === 'preload' ? `<= +${fmt(TARGET.preloadHttpCpu * 100, 1)} % ${verdict(r.cpuRatio - 1 <= TARGET.preloadHttpCpu)}` : '(noise)',
        Number.isFinite(r.programUs) ? `+${fmt(r.programUs, 2)} (${fmt(r.programRuns, 1)} runs)` : '',
        pct(r.rateRatio),
        `${fmt(r.client)} / ${fmt(r.requests)}`,
        String(r.failures),
      ]);
    }
  }
  return table(
    `Preload, HTTP: a new connection per request, the clients' kernel writing TOA (conn-load.js in a ToaCgroup, ${result.parallel} at once, ` +
      `${fmt(result.count)} requests per server and round after ${fmt(result.warm)} unmeasured), a plain node:http server against the same with ` +
      `-r node-toa/preload (NODE_TOA_TRUST_PROXY=loopback), both loaded at once, server CPU per request, median of ${result.rounds} rounds`,
    ['TOA in', 'pair', 'server CPU us/req (plain / other)', 'us/req', 'CPU', 'CPU, min .. max', 'target', 'sock_ops program, kernel us/req', 'req/s ratio', 'answered the client (other side)', 'errors'],
    rows,
    md,
  ) + '\n  control: two identical plain servers, the same clients, measured the same way; its distance from 0 is the noise here\n' +
    '  answered the client: every answer of the preload side must name the client its TOA carried, none of the plain sides\', or the part fails\n' +
    '  sock_ops program: the preload server\'s program, the kernel\'s count of its run time per request (kernel.bpf_stats_enabled, the server in a cgroup of its own); ' +
    'it runs in the softirq, on loopback the client\'s CPU, so the server CPU columns do not hold it\n';
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

function udpTable(u, md) {
  return table(
    `UDP: server CPU ns per datagram (receive + echo), median of ${u.rounds} rounds of ${fmt(u.batch)} datagrams per variant, ` +
      `variants interleaved (order rotated per round), ${u.window} in flight${u.pinned ? ', server on CPU 1, client on CPU 0' : ''}; ` +
      `vs plain: median over rounds of the difference to the plain socket in the same round${u.lost ? `; ${u.lost} datagrams lost` : ''}`,
    ['socket', 'ns/datagram', 'vs plain'],
    u.rows.map((r) => [r.label, fmt(r.ns), r.variant === 'plain' ? '' : `${r.vsPlain >= 0 ? '+' : ''}${fmt(r.vsPlain)}`]),
    md,
  ) + '\n  control: a second plain socket measured the same way; its distance from 0 is the noise here\n';
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  build();
  const m = machine();
  const header = `node-toa benchmark${args.quick ? ' (quick: BENCH_QUICK=1, indicative only)' : ''}\n` +
    `machine: ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}` +
    (m.meltdown ? `\nmeltdown mitigation: ${m.meltdown}` : '') + '\n';
  // Each table as soon as its part ends (the raw numbers go to results.json).
  const show = (text) => process.stdout.write(`${text}\n`);
  show(header);
  const want = new Set(args.only);
  const results = {};
  if (want.has('micro') || want.has('floor')) {
    const rounds = args.quick ? '20' : '80';
    results.floor = part(path.join(OUT, 'syscall-floor'), ['50', rounds], {}, 60);
    results.micro = {};
    for (const mode of ['loopback', 'tap', 'ack']) results.micro[mode] = nodePart('micro', args.quick, 180, { BENCH_MICRO_MODE: mode });
    show(microTables(results.micro, results.floor, args.markdown));
  }
  if (want.has('preload')) {
    results.preload = {};
    for (const mode of ['loopback', 'syn', 'syn-tap', 'ack', 'ack-packet']) results.preload[mode] = nodePart('preload', args.quick, 240, { BENCH_PRELOAD_MODE: mode });
    show(preloadTable(results.preload, args.markdown));
  }
  if (want.has('first-read')) {
    results.firstRead = {};
    for (const mode of ['loopback', 'syn', 'ack']) results.firstRead[mode] = nodePart('first-read', args.quick, 300, { BENCH_FIRST_READ_MODE: mode });
    show(firstReadTable(results.firstRead, args.markdown));
  }
  if (want.has('preload-http')) {
    results.preloadHttp = nodePart('preload-http', args.quick, 1200);
    show(preloadHttpTable(results.preloadHttp, args.markdown));
  }
  if (want.has('profile')) {
    results.profile = nodePart('profile', args.quick, 900);
    show(profileTable(results.profile, args.markdown));
  }
  if (want.has('cluster')) {
    results.cluster = nodePart('cluster', args.quick, 600);
    show(clusterTable(results.cluster, args.markdown));
  }
  if (want.has('http')) {
    results.http = nodePart('http', args.quick, 240);
    show(httpTable(results.http, args.markdown, results.micro?.loopback));
  }
  if (want.has('proxy')) {
    results.proxy = nodePart('proxy-protocol', args.quick, 120);
    show(proxyTable(results.proxy, args.markdown, results.micro?.loopback));
  }
  if (want.has('tap')) {
    results.tap = nodePart('tap', args.quick, 240);
    show(tapTable(results.tap, args.markdown));
  }
  if (want.has('udp')) {
    results.udp = nodePart('udp', args.quick, 300);
    show(udpTable(results.udp, args.markdown));
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
