// 100,000 real connections through a server using node-toa: memory stays flat, nothing leaks.
// Bounded in count and time; the figures are printed for the issue notes.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { enable, realRemoteAddress } from '../lib/index';

const TOTAL = 100_000;
const WARMUP = 10_000;
const CONCURRENCY = 64;
const TIME_LIMIT_MS = 120_000;
// Many source addresses: 100,000 connections from one would run out of ephemeral ports.
const SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

const onLinux = process.platform === 'linux' ? describe : describe.skip;

onLinux('soak', () => {
  it(`${TOTAL} connections: answers right, RSS flat, no fd or handle leak`, async () => {
    let answered = 0;
    let wrong = 0;
    const server = enable(
      net.createServer((socket) => {
        const a = realRemoteAddress(socket, { trustProxy: 'loopback' });
        if (a.source !== 'peer' || a.port !== socket.remotePort || !SOURCES.includes(a.address)) wrong++;
        answered++;
        socket.end(a.address);
        socket.on('error', () => undefined);
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const fdsBefore = openFds();

    const deadline = Date.now() + TIME_LIMIT_MS;
    let started = 0;
    let finished = 0;
    let failed = 0;
    let rssAfterWarmup = 0;
    const samples: number[] = [];
    const t0 = process.hrtime.bigint();

    await new Promise<void>((resolve) => {
      const next = () => {
        if (started >= TOTAL || Date.now() > deadline) {
          if (finished === started) resolve();
          return;
        }
        const i = started++;
        const socket = net.connect({ port, host: '127.0.0.1', localAddress: SOURCES[i % SOURCES.length] });
        let body = '';
        socket.setEncoding('utf8');
        socket.on('data', (d) => (body += d));
        socket.on('error', () => failed++);
        socket.on('close', () => {
          if (body !== SOURCES[i % SOURCES.length]) failed++;
          finished++;
          if (finished === WARMUP) rssAfterWarmup = rssMiB();
          if (finished % 10_000 === 0) samples.push(Math.round(rssMiB()));
          next();
        });
      };
      for (let i = 0; i < CONCURRENCY; i++) next();
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await new Promise((r) => setTimeout(r, 200));
    const rssEnd = rssMiB();
    const fdsAfter = openFds();
    await new Promise((r) => server.close(r));

    // eslint-disable-next-line no-console
    console.log(
      `soak: ${finished} connections in ${seconds.toFixed(1)} s (${Math.round(finished / seconds)}/s), ` +
        `RSS after ${WARMUP}: ${rssAfterWarmup.toFixed(0)} MiB, at the end: ${rssEnd.toFixed(0)} MiB, ` +
        `every 10k: ${samples.join(' ')} MiB; fds before ${fdsBefore}, after ${fdsAfter}`,
    );
    expect(finished).toBe(TOTAL);
    expect(failed).toBe(0);
    expect(wrong).toBe(0);
    expect(answered).toBe(TOTAL);
    expect(rssEnd - rssAfterWarmup).toBeLessThan(40);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
  }, TIME_LIMIT_MS + 30_000);
});
