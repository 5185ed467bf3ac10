// examples/metrics-prometheus.js as an operator runs it: real connections, three of them from
// curl whose own kernel writes a TOA into its SYN (a ToaCgroup), two without, then a Prometheus
// scrape of /metrics over HTTP shows exactly what happened, per port and source.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ToaCgroup, describeSockops } from '../helpers/sockops';

const ROOT = path.join(__dirname, '..', '..');

function get(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describeSockops('examples/metrics-prometheus.js, scraped', () => {
  let group: ToaCgroup;
  let child: ChildProcess;
  let app: number;
  let metrics: number;

  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
    child = spawn(process.execPath, [path.join('examples', 'metrics-prometheus.js')], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', TRUST_PROXY: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the example did not start within 10 s: ${stderr}`)), 10_000);
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        const m = /^(metrics on|listening on) .*:(\d+)$/.exec(line);
        if (m === null) return;
        if (m[1] === 'metrics on') metrics = Number(m[2]);
        else app = Number(m[2]);
        if (metrics !== undefined && app !== undefined) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }, 30_000);
  afterAll(async () => {
    child?.kill();
    await group?.close();
  });

  it('counts connections by source and packet, per port, as Prometheus counters', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await group.run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${app}/`], { timeoutMs: 10_000 });
      expect(r.stdout).toMatch(/^hello 198\.51\.100\.\d+:\d+ \(toa\)$/m);
    }
    for (let i = 0; i < 2; i++) expect(await get(app, '/')).toMatch(/^hello 127\.0\.0\.1:\d+ \(peer\)$/m);
    const text = await get(metrics, '/metrics');
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.split(' ')[1]);
    };
    expect(value(`node_toa_connections_total{port="${app}",source="toa"}`)).toBe(3);
    expect(value(`node_toa_connections_total{port="${app}",source="peer"}`)).toBe(2);
    expect(value(`node_toa_toa_packets_total{port="${app}",packet="syn"}`)).toBe(3);
    expect(value(`node_toa_toa_packets_total{port="${app}",packet="ack"}`)).toBeUndefined();
    expect(text).toContain('# TYPE node_toa_refused_total counter');
    // The metrics server's own connection (this scrape) is no TOA connection: it is not counted.
    expect(value(`node_toa_connections_total{port="${metrics}",source="peer"}`)).toBeUndefined();
  });
});
