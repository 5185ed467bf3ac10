// Type tests: test/build/types/*.ts compile with tsc --noEmit (each augmentation and signature is
// usable), every misuse marked @ts-expect-error really is a type error (checked again with the
// marks turned into plain comments), and without node-toa's module the augmentations are absent.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const TYPES = path.join(__dirname, 'types');
const TSC = require.resolve('typescript/bin/tsc');
// tsc takes 10-30 s per program on a small machine.
const TSC_TIMEOUT = 180000;

interface TscResult {
  status: number | null;
  /** "file:line" of every error */
  errors: string[];
  output: string;
}

function tsc(args: string[]): TscResult {
  const r = spawnSync(process.execPath, [TSC, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  const output = `${r.stdout}${r.stderr}`;
  const errors = [...output.matchAll(/^(.+?)\((\d+),\d+\): error TS\d+/gm)].map((m) => `${path.basename(m[1])}:${m[2]}`);
  return { status: r.status, errors, output };
}

const FILES = fs.readdirSync(TYPES).filter((f) => f.endsWith('.ts'));
const DIRECTIVE = /\/\/ @ts-expect-error/;

/** A scratch directory beside lib/ (git-ignored build-*), so relative imports stay valid. */
function scratch(): string {
  return fs.mkdtempSync(path.join(ROOT, 'build-types-'));
}

describe('type tests', () => {
  it('has type tests for Express, Fastify, Koa and the core (listen, cluster, register)', () => {
    expect(FILES.sort()).toEqual(['core-types.ts', 'express-types.ts', 'fastify-types.ts', 'koa-types.ts']);
  });

  it('test/build/types compiles with tsc --noEmit (strict), @ts-expect-error marks included', () => {
    const r = tsc(['-p', path.join(TYPES, 'tsconfig.json')]);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  }, TSC_TIMEOUT);

  it('every misuse marked @ts-expect-error is an error of its own line', () => {
    const dir = scratch();
    try {
      const expected: string[] = [];
      for (const file of FILES) {
        const lines = fs.readFileSync(path.join(TYPES, file), 'utf8').split('\n');
        lines.forEach((line, i) => {
          // The mark covers the next line (1-based: i + 2).
          if (DIRECTIVE.test(line)) expected.push(`${file}:${i + 2}`);
        });
        const unmarked = lines.map((l) => l.replace(DIRECTIVE, '// (was a ts-expect-error)').replace(/'\.\.\/\.\.\/\.\.\/lib\//g, "'../lib/"));
        fs.writeFileSync(path.join(dir, file), unmarked.join('\n'));
      }
      const tsconfig = JSON.parse(fs.readFileSync(path.join(TYPES, 'tsconfig.json'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
      expect(expected.length).toBeGreaterThanOrEqual(15);
      const r = tsc(['-p', path.join(dir, 'tsconfig.json')]);
      expect(r.status).not.toBe(0);
      expect([...new Set(r.errors)].sort()).toEqual(expected.sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, TSC_TIMEOUT);

  it('without node-toa, Express and Fastify requests have no realRemoteAddress, and Koa\'s is untyped', () => {
    const dir = scratch();
    try {
      const files = {
        'express-without.ts': "import express from 'express';\nexpress().get('/', (req) => req.realRemoteAddress());\n",
        'fastify-without.ts': "import Fastify from 'fastify';\nFastify().get('/', async (request) => request.realRemoteAddress());\n",
        // Koa's context has an index signature: without node-toa/koa anything goes (any); with
        // it this very line is an error (see koa-types.ts).
        'koa-without.ts': "import Koa from 'koa';\nnew Koa().use((ctx) => { const f: 'IPv5' = ctx.realRemoteAddress().family; return f; });\n",
      };
      for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), source);
      const r = tsc(['--noEmit', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node', ...Object.keys(files).map((f) => path.join(dir, f))]);
      expect(r.status).not.toBe(0);
      expect(r.errors.sort()).toEqual(['express-without.ts:2', 'fastify-without.ts:2']);
      expect(r.output.match(/realRemoteAddress/g)).toHaveLength(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, TSC_TIMEOUT);
});
