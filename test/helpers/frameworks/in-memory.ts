// Runs test/helpers/children/inject-app.js: one in-memory request through a real app (see there why in a
// child process). Uses the built package (dist/) through its own name, as users do.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export type Framework = 'express5' | 'express4' | 'fastify5' | 'fastify4' | 'koa3' | 'koa2';

export function injectInChild(framework: Framework): { status: number; body: unknown } {
  const root = path.join(__dirname, '..', '..', '..');
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'children', 'inject-app.js'), framework], {
    cwd: root,
    encoding: 'utf8',
    timeout: 20000,
  });
  const out = JSON.parse(r.stdout || '{}') as { status?: number; body?: string; error?: string };
  if (r.status !== 0 || out.error !== undefined) {
    throw new Error(`inject-app.js ${framework} failed: ${out.error ?? r.stderr}`);
  }
  return { status: out.status!, body: JSON.parse(out.body!) };
}
