// The cmake-js build (N-API only, from node-api-headers) is the same addon as node-gyp's.
// The test builds it when build-cmake/ is missing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { compileKinds } from '../../lib/core/kinds';
import type { NativeBinding } from '../../lib/addon/native';

const cmakeAddon = path.join(__dirname, '..', '..', 'build-cmake', 'Release', 'node_toa.node');
const gypAddon = path.join(__dirname, '..', '..', 'build', 'Release', 'node_toa.node');

// Builds it here when it is missing, so that `npm test` needs nothing beyond `npm install`. The
// build is the README's (`npm run build:cmake`): about half a minute on a 2-core machine.
describe('the cmake-js build', () => {
  beforeAll(() => {
    if (fs.existsSync(cmakeAddon)) return;
    const built = spawnSync('npm', ['run', '--silent', 'build:cmake'], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`npm run build:cmake failed:\n${built.stdout}\n${built.stderr}`);
  }, 300_000);

  it('loads and answers as the node-gyp build does', () => {
    const cmake = require(cmakeAddon) as NativeBinding;
    const gyp = require(gypAddon) as NativeBinding;
    expect(Object.keys(cmake).sort()).toEqual(Object.keys(gyp).sort());
    // An IPv4 SYN from 198.51.100.2:20000 carrying kind 200 for 192.0.2.1:40000.
    const ip = Buffer.from('450000300000400040060000c6336402cb00710a', 'hex');
    const tcp = Buffer.from('4e201f9000000001000000007002ffff00000000c8089c40c0000201', 'hex');
    const syn = Buffer.concat([ip, tcp]);
    const table = compileKinds(undefined);
    const expected = gyp.testing.parse(syn, table);
    expect(expected.options).toMatchObject([{ address: '192.0.2.1', port: 40000, kind: 200 }]);
    expect(cmake.testing.parse(syn, table)).toEqual(expected);
    expect(cmake.recordLayout).toEqual(gyp.recordLayout);
    expect(Buffer.from(cmake.testing.defaultKindTable())).toEqual(Buffer.from(gyp.testing.defaultKindTable()));
  });
});
