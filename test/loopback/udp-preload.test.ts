// NODE_TOA_UDP under node-toa/preload: an unmodified dgram app (test/helpers/children/udp-echo-app.js) behind
// the SPP relay sees the client, and its replies reach the client through the relay with the header
// echoed; the app's own client socket (bound by Node on send) is left alone; bad values stop the
// process at startup with one line. Runs dist/ (npm run build:ts).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as dgram from 'node:dgram';
import { EnvError, udpFromEnv } from '../../lib/install/env';
import { startWithHello, stopWithStdin } from '../helpers/process/line-process';
import { UdpClient, UdpRelay, sppHeader } from '../helpers/producers/udp-relay';

const ROOT = path.join(__dirname, '..', '..');
const APP = path.join(__dirname, '..', 'helpers', 'children', 'udp-echo-app.js');

describe('NODE_TOA_UDP (env.ts)', () => {
  it('reads a subset of spp, proxy-protocol, uoa with their modes', () => {
    expect(udpFromEnv({})).toBeUndefined();
    expect(udpFromEnv({ NODE_TOA_UDP: ' ' })).toBeUndefined();
    expect(udpFromEnv({ NODE_TOA_UDP: 'off' })).toBeUndefined();
    expect(udpFromEnv({ NODE_TOA_UDP: 'spp' })).toEqual({ spp: true });
    expect(udpFromEnv({ NODE_TOA_UDP: 'spp, proxy-protocol:optional' })).toEqual({ spp: true, proxyProtocol: 'optional' });
    expect(udpFromEnv({ NODE_TOA_UDP: 'proxy-protocol:required,uoa' })).toEqual({ proxyProtocol: true, uoa: 'auto' });
    expect(udpFromEnv({ NODE_TOA_UDP: 'uoa:on,spp:optional,proxy-protocol' })).toEqual({ uoa: true, spp: 'optional', proxyProtocol: true });
  });

  const bad: Array<[string, string]> = [
    ['tcp', "node-toa: NODE_TOA_UDP='tcp' must be spp, proxy-protocol, uoa (comma-separated), each optionally with :required or :optional (uoa: :on or :auto)"],
    ['spp,,uoa', "node-toa: NODE_TOA_UDP='spp,,uoa' must be spp, proxy-protocol, uoa (comma-separated), each optionally with :required or :optional (uoa: :on or :auto)"],
    ['spp:auto', "node-toa: NODE_TOA_UDP='spp:auto' has spp:auto; spp takes :required or :optional"],
    ['uoa:optional', "node-toa: NODE_TOA_UDP='uoa:optional' has uoa:optional; uoa takes :on or :auto"],
    ['spp,spp', "node-toa: NODE_TOA_UDP='spp,spp' names spp twice"],
    ['spp:optional:x', "node-toa: NODE_TOA_UDP='spp:optional:x' must be spp, proxy-protocol, uoa (comma-separated), each optionally with :required or :optional (uoa: :on or :auto)"],
  ];

  it.each(bad)('NODE_TOA_UDP=%s is an EnvError naming the variable and the value', (value, message) => {
    let error: unknown;
    try {
      udpFromEnv({ NODE_TOA_UDP: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EnvError);
    expect(error).toMatchObject({ code: 'ERR_TOA_BAD_ENV', variable: 'NODE_TOA_UDP', value, message });
  });

  it.each(bad)('node -r node-toa/preload with NODE_TOA_UDP=%s stops before the app with one line', (value, message) => {
    const r = spawnSync(process.execPath, ['-r', 'node-toa/preload', '-e', "console.log('app ran')"], {
      cwd: ROOT,
      env: { ...process.env, NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off', NODE_TOA_UDP: value },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`node-toa/preload: ${message.replace(/^node-toa: /, '')}\n`);
  });
});

describe('an unmodified dgram app under node -r node-toa/preload', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((s) => s()));
  });

  async function app(env: Record<string, string>) {
    const { child, hello } = await startWithHello<{ port: number }>([process.execPath, '-r', 'node-toa/preload', APP, '127.0.0.1'], 20_000, {
      ...process.env,
      NODE_TOA_ACK: 'off',
      ...env,
    });
    stops.push(() => stopWithStdin(child));
    // Lines are queued: two can come in one chunk, and readline emits both at once (a line
    // emitted while nobody waited would be lost).
    const lines = readline.createInterface({ input: child.stdout! });
    const queued: Array<Record<string, unknown>> = [];
    const waiting: Array<(line: Record<string, unknown>) => void> = [];
    lines.on('line', (l) => {
      const parsed = JSON.parse(l) as Record<string, unknown>;
      const take = waiting.shift();
      if (take !== undefined) take(parsed);
      else queued.push(parsed);
    });
    const next = () =>
      new Promise<Record<string, unknown>>((resolve) => {
        const line = queued.shift();
        if (line !== undefined) resolve(line);
        else waiting.push(resolve);
      });
    return { child, port: hello.port, next };
  }

  it('NODE_TOA_UDP=spp: the client is rinfo, and replies reach it through the SPP relay with the header echoed', async () => {
    const { port } = await app({ NODE_TOA_UDP: 'spp', NODE_TOA_TRUST_PROXY: '127.0.0.1' });
    const relay = await UdpRelay.start({ mode: 'spp', server: { address: '127.0.0.1', port }, host: '127.0.0.1', claim: (r) => ({ address: '203.0.113.7', port: r.port }) });
    const client = await UdpClient.start('127.0.0.2');
    stops.push(() => relay.close(), () => client.close());
    for (let i = 0; i < 3; i++) client.send(`m${i}`, relay.endpoint);
    const replies = await client.replies(3);
    expect(replies.sort()).toEqual([0, 1, 2].map((i) => `203.0.113.7 ${client.endpoint.port} spp m${i}`));
    expect(relay.replies).toEqual({ withHeader: 3, withoutHeader: 0, wrongHeader: 0 });
  });

  it('without NODE_TOA_UDP the same app sees the relay, and its replies are lost to Spectrum (no header)', async () => {
    const { port } = await app({ NODE_TOA_TRUST_PROXY: '127.0.0.1' });
    const relay = await UdpRelay.start({ mode: 'spp', server: { address: '127.0.0.1', port }, host: '127.0.0.1' });
    stops.push(() => relay.close());
    const sender = dgram.createSocket('udp4');
    await new Promise<void>((r) => sender.bind(0, '127.0.0.2', r));
    stops.push(() => new Promise((r) => sender.close(() => r())));
    sender.send('x', relay.endpoint.port, relay.endpoint.address);
    const deadline = Date.now() + 3000;
    while (relay.replies.withoutHeader + relay.replies.wrongHeader === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(relay.replies.withoutHeader + relay.replies.wrongHeader).toBe(1);
    expect(relay.replies.withHeader).toBe(0);
  });

  it("the app's client socket, bound by Node on send(), is left alone: a trusted forged header is data there", async () => {
    const { child, next } = await app({ NODE_TOA_UDP: 'spp', NODE_TOA_TRUST_PROXY: '127.0.0.1' });
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => peer.close(() => r())));
    const got = new Promise<dgram.RemoteInfo>((resolve) => peer.once('message', (_m, rinfo) => resolve(rinfo)));
    child.stdin!.write(`send ${peer.address().port}\n`);
    const rinfo = await got;
    const header = sppHeader({ address: '198.51.100.9', port: 9 }, { address: '127.0.0.1', port: 1 });
    peer.send(Buffer.concat([header, Buffer.from('r')]), rinfo.port, '127.0.0.1');
    let line = await next();
    if (line.clientPort !== undefined) line = await next();
    expect(line).toEqual({ client: Buffer.concat([header, Buffer.from('r')]).toString('latin1'), source: null });
  });
});
