// A node:cluster primary for test/netns/cluster.test.ts, started inside the test's network namespace
// (`ip netns exec <ns> node cluster-primary.js '<config JSON>'`) so that the listening socket,
// which the primary owns, lives there. Config:
//   sched: 'rr' | 'none'       node:cluster scheduling policy
//   enable: boolean            call toa.enableCluster() before forking
//   workers: number            how many workers (cluster-worker.js)
//   listen: 'cluster' | 'toa'  workers listen through node:cluster, or each with toa.listen()
//   app: 'http' | 'express'    what the workers serve
//   port: number               0 for any (listen: 'cluster' only)
// Prints JSON lines: { ready: true, port, pids } once every worker listens, { warning } for each
// process warning a worker reports, { error } on failure. Stops the workers and exits when its
// stdin closes (the test ending), and never outlives 60 s.
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

const config = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

cluster.schedulingPolicy = config.sched === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
if (config.enable) require('node-toa').enableCluster();

cluster.setupPrimary({
  exec: path.join(__dirname, 'cluster-worker.js'),
  args: [JSON.stringify(config)],
  silent: false,
});

const listening = new Map();
for (let i = 0; i < config.workers; i++) {
  const worker = cluster.fork();
  worker.on('message', (m) => {
    if (m && m.listening) {
      listening.set(m.pid, m.port);
      if (listening.size === config.workers) {
        const ports = new Set(listening.values());
        if (ports.size !== 1) say({ error: `workers listen on different ports: ${[...ports]}` });
        else say({ ready: true, port: [...ports][0], pids: [...listening.keys()] });
      }
    } else if (m && m.warning) {
      say({ warning: m.warning });
    } else if (m && m.error) {
      say({ error: m.error });
    }
  });
}

function stop() {
  for (const w of Object.values(cluster.workers)) w.kill();
  setTimeout(() => process.exit(0), 200).unref();
}
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
setTimeout(() => {
  say({ error: 'cluster-primary: still running after 60 s, stopping' });
  stop();
}, 60000).unref();
