// Every JavaScript example of README.md and docs/*.md is run or, when it is part of a larger
// program, at least parsed. What an example is says the comment on the line before its fence:
//   (none)                                a whole program that runs to its end: `node FILE` exits 0
//   <!-- example: serves http -->         a server on port 8080, for ever: run in a network
//   <!-- example: serves proxy-protocol -->   namespace of its own (so 8080 is free), a client
//   <!-- example: serves spp -->              there sends one request from 198.51.100.2, the
//                                             proxies' range the examples trust, and reads the answer
//   <!-- example: fragment -->            part of a program (names defined elsewhere): parsed only
// TypeScript blocks (type listings) are parsed only. Files are written under build/doc-examples/,
// inside the package, so `require('node-toa')` is the package itself (its exports, its dist/).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { codeBlocks, docFiles, ROOT, type CodeBlock } from '../helpers/docs/markdown';
import { itNeeds, type Missing } from '../helpers/jest/requirements';

const OUT = path.join(ROOT, 'build', 'doc-examples');
const CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'doc-example-client.js');
/** The address the examples' client speaks from: inside the examples' trusted 198.51.100.0/24. */
const PROXY_ADDRESS = '198.51.100.2';
const PORT = 8080;
const SERVES = ['http', 'proxy-protocol', 'spp'] as const;
type Serves = (typeof SERVES)[number];

const JS = new Set(['js', 'javascript', 'cjs', 'mjs']);
const TS = new Set(['ts', 'typescript']);
const examples = docFiles()
  .flatMap((file) => codeBlocks(file))
  .filter((b) => JS.has(b.lang) || TS.has(b.lang));
const name = (b: CodeBlock): string => `${b.file}:${b.line}`;

/** The block written to a file of its own, named after where it is. */
function write(b: CodeBlock): string {
  fs.mkdirSync(OUT, { recursive: true });
  const ext = b.lang === 'mjs' ? '.mjs' : '.js';
  const file = path.join(OUT, `${b.file.replace(/[/.]/g, '-')}-${b.line}${ext}`);
  fs.writeFileSync(file, b.code);
  return file;
}

/** Syntax errors of a block, parsed as an ES module (top-level await and import allowed, as in fragments). */
function syntaxErrors(b: CodeBlock): string[] {
  const fileName = TS.has(b.lang) ? 'example.ts' : 'example.mjs';
  const { diagnostics = [] } = ts.transpileModule(b.code, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ESNext, module: ts.ModuleKind.ESNext },
  });
  return diagnostics.map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    return `${b.file}:${b.line + 1 + at}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

function kindOf(b: CodeBlock): 'runs' | 'fragment' | Serves {
  if (TS.has(b.lang)) return 'fragment';
  if (b.marker === null) return 'runs';
  if (b.marker === 'fragment') return 'fragment';
  const serves = /^serves (\S+)$/.exec(b.marker);
  if (serves && (SERVES as readonly string[]).includes(serves[1])) return serves[1] as Serves;
  throw new Error(`${name(b)}: unknown example marker "${b.marker}" (known: fragment, ${SERVES.map((s) => `serves ${s}`).join(', ')})`);
}

/** Runs to its end on its own: listens on port 0 of loopback, connects once, closes. */
function runToEnd(b: CodeBlock): void {
  const result = spawnSync(process.execPath, [write(b)], { cwd: ROOT, encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
  const what = `${name(b)} (node ${path.relative(ROOT, write(b))})`;
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.signal !== null) throw new Error(`${what} did not end within 20 s (${result.signal})\n${result.stdout}${result.stderr}`);
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}\n${result.stdout}${result.stderr}`);
}

const netnsMissing: Missing = (() => {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'the server examples run in a network namespace of their own: that needs root';
  for (const tool of ['unshare', 'nsenter', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
})();

function waitForExit(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Starts a server example in a new network namespace (loopback up, the proxy's address on it), as
 * written (port 8080), sends it one request from inside that namespace, and returns the answer.
 */
async function serve(b: CodeBlock, kind: Serves): Promise<string> {
  const file = write(b);
  const setup = `ip link set lo up && ip addr add ${PROXY_ADDRESS}/32 dev lo && exec "$0" "$1"`;
  // detached: its own process group, so the cluster example's workers are stopped with it.
  const child = spawn('unshare', ['--net', '--', 'sh', '-c', setup, process.execPath, file], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    // Enter its namespace only once it has one (unshare runs before the exec, but not before spawn returns).
    const own = fs.readlinkSync('/proc/self/ns/net');
    const deadline = Date.now() + 5000;
    while (fs.readlinkSync(`/proc/${child.pid}/ns/net`) === own) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name(b)}: no network namespace of its own: ${output}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const client = spawnSync('nsenter', [`--net=/proc/${child.pid}/ns/net`, process.execPath, CLIENT, kind, PROXY_ADDRESS, String(PORT)], {
      encoding: 'utf8',
      timeout: 20000,
      killSignal: 'SIGKILL',
    });
    if (client.status !== 0) throw new Error(`${name(b)}: the client got no answer (${client.status ?? client.signal}): ${client.stderr}\nexample's output: ${output}`);
    return client.stdout;
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitForExit(child, 3000);
  }
}

/** What each kind of server must answer: the client it was told about, not a guess. */
const ANSWER: Record<Serves, RegExp> = {
  // No proxy header and no TOA: the peer itself, the address the request came from.
  http: new RegExp(`^200 [^]*${PROXY_ADDRESS.replace(/\./g, '\\.')}`),
  // The client the PROXY header named (doc-example-client.js), read because the peer is trusted.
  'proxy-protocol': /^200 hello 192\.0\.2\.1:51234 \(proxy-protocol\)\n$/,
  // The client the SPP header named, and the reply carries an SPP header back.
  spp: /^spp hello 192\.0\.2\.1:51234 \(spp\)\n$/,
};

describe('the examples of README.md and docs/*.md', () => {
  it('finds them: README.md shows a whole, running example per integration and no fragment', () => {
    const readme = examples.filter((b) => b.file === 'README.md');
    expect(readme.map(kindOf).filter((k) => k === 'fragment')).toEqual([]);
    for (const kind of SERVES) expect(readme.filter((b) => kindOf(b) === kind).length).toBeGreaterThanOrEqual(1);
    expect(readme.filter((b) => kindOf(b) === 'http').length).toBeGreaterThanOrEqual(4); // http, Express, Fastify, Koa
    expect(examples.filter((b) => b.file === path.join('docs', 'api.md') && kindOf(b) === 'runs').length).toBeGreaterThanOrEqual(20);
  });

  it('every example parses (JavaScript as an ES module, TypeScript type listings)', () => {
    expect(examples.flatMap(syntaxErrors)).toEqual([]);
  });

  it('a syntax error in an example is found (the check can fail)', () => {
    expect(syntaxErrors({ file: 'x.md', line: 1, lang: 'js', marker: 'fragment', code: 'app.use((req) => {\n' })).not.toEqual([]);
  });

  const runs = examples.filter((b) => kindOf(b) === 'runs');
  it.each(runs.map((b) => [name(b), b] as const))('%s runs to its end (exit 0)', (_, b) => runToEnd(b), 30000);

  for (const kind of SERVES) {
    for (const b of examples.filter((e) => kindOf(e) === kind)) {
      itNeeds(netnsMissing, `${name(b)} serves on port ${PORT} and answers a ${kind} request with the client`, async () => {
        expect(await serve(b, kind)).toMatch(ANSWER[kind]);
      }, 40000);
    }
  }
});
