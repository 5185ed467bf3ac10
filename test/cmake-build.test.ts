// The cmake-js build (N-API only, from node-api-headers) is the same addon as node-gyp's.
// CI builds it in .ci/run; elsewhere this runs when build-cmake/ exists.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileKinds } from '../lib/core/kinds';
import type { NativeBinding } from '../lib/addon/native';

const cmakeAddon = path.join(__dirname, '..', 'build-cmake', 'Release', 'node_toa.node');
const gypAddon = path.join(__dirname, '..', 'build', 'Release', 'node_toa.node');
const present = fs.existsSync(cmakeAddon);
if (!present && process.env.CI !== 'true') {
  console.warn(`cmake-build.test: skipped, ${cmakeAddon} is not built (npm run build:cmake)`);
}

(present || process.env.CI === 'true' ? describe : describe.skip)('the cmake-js build', () => {
  it('loads and answers as the node-gyp build does', () => {
    const cmake = require(cmakeAddon) as NativeBinding;
    const gyp = require(gypAddon) as NativeBinding;
    expect(Object.keys(cmake).sort()).toEqual(Object.keys(gyp).sort());
    // An IPv4 SYN from 198.51.100.2:20000 carrying kind 200 for 192.0.2.1:40000.
    const ip = Buffer.from('450000300000400040060000c6336402cb00710a', 'hex');
    const tcp = Buffer.from('4e201f9000000001000000007002ffff00000000c8089c40c0000201', 'hex');
    const syn = Buffer.concat([ip, tcp]);
    const table = compileKinds(undefined);
    const expected = gyp.parse(syn, table);
    expect(expected.toa).toMatchObject({ address: '192.0.2.1', port: 40000, kind: 200 });
    expect(cmake.parse(syn, table)).toEqual(expected);
    expect(Buffer.from(cmake.defaultKindTable())).toEqual(Buffer.from(gyp.defaultKindTable()));
  });
});
