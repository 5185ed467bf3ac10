// node examples/metrics-prometheus.js — node-toa's counters for Prometheus, with prom-client.
//   PORT (default 3000): the application; METRICS_PORT (default 9464): GET /metrics;
//   HOST (default: every address), TRUST_PROXY: your L4 proxy's addresses or ranges (default 127.0.0.1).
// Graph, for example:
//   share of connections with a believed TOA:
//     sum(rate(node_toa_connections_total{source="toa"}[5m])) / sum(rate(node_toa_connections_total[5m]))
//   refused, by reason:  sum by (reason) (rate(node_toa_refused_total[5m]))
//   which packet carries it (needs { ack: true } when not "syn"):  sum by (packet) (rate(node_toa_toa_packets_total[5m]))
'use strict';
const http = require('node:http');
const client = require('prom-client'); // a dependency of the application, not of node-toa
const toa = require('node-toa');

toa.configure({ trustProxy: process.env.TRUST_PROXY || '127.0.0.1' });

// Counters read from toa.metrics() at each scrape: `collect` sets them to the current totals.
function counter(name, help, labelNames, values) {
  return new client.Counter({
    name,
    help,
    labelNames,
    collect() {
      this.reset();
      for (const [labels, value] of values(toa.metrics())) if (value > 0) this.inc(labels, value);
    },
  });
}
const perPort = (m, pick) => Object.entries(m.ports).flatMap(([port, p]) => pick(p).map(([l, v]) => [{ port, ...l }, v]));

const registry = new client.Registry();
registry.registerMetric(counter('node_toa_connections_total', 'Connections resolved, by source (toa, kernel, peer)',
  ['port', 'source'], (m) => perPort(m, (p) => Object.entries(p.bySource).map(([source, v]) => [{ source }, v]))));
registry.registerMetric(counter('node_toa_toa_packets_total', 'Connections answered from an option, by the packet that carried it',
  ['port', 'packet'], (m) => perPort(m, (p) => Object.entries(p.byPacket).map(([packet, v]) => [{ packet }, v]))));
registry.registerMetric(counter('node_toa_refused_total', 'Connections whose options were not believed, by reason',
  ['port', 'reason'], (m) => perPort(m, (p) => Object.entries(p.refused).map(([reason, v]) => [{ reason }, v]))));
registry.registerMetric(counter('node_toa_no_saved_syn_total', 'Connections without a saved SYN (syncookies, enabled late)',
  ['port'], (m) => perPort(m, (p) => [[{}, p.noSavedSyn]])));
registry.registerMetric(counter('node_toa_tap_drops_total', 'Packets the ACK tap could not keep up with',
  [], (m) => [[{}, m.tap.drops]]));

const app = http.createServer((req, res) => {
  const c = toa.realRemoteAddress(req.socket);
  res.end(`hello ${c.address}:${c.port} (${c.source})\n`);
});
const metrics = http.createServer(async (req, res) => {
  if (req.url !== '/metrics') return res.writeHead(404).end();
  res.setHeader('content-type', registry.contentType);
  res.end(await registry.metrics());
});

(async () => {
  await toa.listen(app, { port: process.env.PORT || 3000, host: process.env.HOST });
  await new Promise((resolve) => metrics.listen(process.env.METRICS_PORT || 9464, process.env.HOST, resolve));
  console.log(`metrics on ${metrics.address().address}:${metrics.address().port}`);
  const { address, port } = app.address();
  console.log(`listening on ${address}:${port}`);
})();
