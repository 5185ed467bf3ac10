// `node -r ./join-cgroup.js`: moves the process into the cgroup BENCH_CGROUP names before the
// modules after it load, so node-toa/preload (the next -r) attaches its sock_ops program to that
// cgroup, which holds this server alone (kernel-programs.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';

const cgroup = process.env.BENCH_CGROUP;
if (cgroup !== undefined && cgroup !== '') fs.writeFileSync(path.join(cgroup, 'cgroup.procs'), String(process.pid));
