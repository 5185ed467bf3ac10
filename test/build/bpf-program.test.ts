// The server's sock_ops program ships as instructions (native/bpf/conn_sockops.inc), generated from
// its C source (native/bpf/conn_sockops.bpf.c) by `npm run build:bpf`: the two must not drift.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { findExe, firstMissing, itNeeds } from '../helpers/jest/requirements';

const ROOT = path.join(__dirname, '..', '..');
const missing = firstMissing(
  process.platform === 'linux' ? null : 'the BPF program is built on Linux',
  findExe('clang') ? null : 'clang not found (apt-get install clang)',
  findExe('llvm-objcopy') && findExe('llvm-readelf') ? null : 'llvm-objcopy and llvm-readelf not found (apt-get install llvm)',
  fs.existsSync('/usr/include/bpf/bpf_helpers.h') ? null : '/usr/include/bpf/bpf_helpers.h not found (apt-get install libbpf-dev)',
);

describe('the sock_ops program', () => {
  itNeeds(missing, 'conn_sockops.inc is what conn_sockops.bpf.c compiles to', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-bpf.js'), '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('loads each of the five maps the loader creates, by its index', () => {
    const inc = fs.readFileSync(path.join(ROOT, 'native', 'bpf', 'conn_sockops.inc'), 'utf8');
    const maps = new Set([...inc.matchAll(/\{(\d+), (\d)\},/g)].map((m) => Number(m[2])));
    expect([...maps].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});
