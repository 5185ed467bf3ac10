// 100,000 real connections through a server using node-toa: memory stays flat, nothing leaks.
// Bounded in count and time; the figures are printed for the issue notes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { enable, realRemoteAddress, stats } from '../lib/index';

const TOTAL = 100_000;
const WARMUP = 10_000;
const CONCURRENCY = 128;
const TIME_LIMIT_MS = 150_000;
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
      // The ACK tap too: its native table must stay bounded and drained as well.
      { ack: { capacity: 4096 } },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const fdsBefore = openFds();

    let rssAfterWarmup = 0;
    const samples: number[] = [];
    const t0 = process.hrtime.bigint();
    const client = spawn(
      process.execPath,
      [path.join(__dirname, 'helpers', 'soak-client.js'), String(port), String(TOTAL), String(CONCURRENCY), String(TIME_LIMIT_MS), ...SOURCES],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    client.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    // RSS is a sawtooth (sockets are garbage until a major GC), so compare the troughs: the
    // lowest reading of the first half after warm-up with the lowest of the second half.
    const sampler = setInterval(() => {
      if (answered < WARMUP) return;
      if (rssAfterWarmup === 0) rssAfterWarmup = rssMiB();
      samples.push(Math.round(rssMiB()));
    }, 500);
    await new Promise((resolve) => client.on('exit', resolve));
    clearInterval(sampler);
    const { finished, failed, wrong: wrongAtClient } = JSON.parse(out) as { finished: number; failed: number; wrong: number };
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await new Promise((r) => setTimeout(r, 200));
    const rssEnd = rssMiB();
    const fdsAfter = openFds();
    const tap = stats().taps.find((t) => t.port === port)!;
    await new Promise((r) => server.close(r));

    // eslint-disable-next-line no-console
    console.log(
      `soak: ${finished} connections in ${seconds.toFixed(1)} s (${Math.round(finished / seconds)}/s), ` +
        `RSS after ${WARMUP}: ${rssAfterWarmup.toFixed(0)} MiB, at the end: ${rssEnd.toFixed(0)} MiB, ` +
        `every 0.5 s after warm-up: ${samples.join(' ')} MiB; fds before ${fdsBefore}, after ${fdsAfter}; ` +
        `tap: ${tap.packets} packets, table ${tap.tableSize}/${tap.capacity}, ${tap.evictions} evictions, ${tap.drops} drops`,
    );
    expect(finished).toBe(TOTAL);
    expect(failed).toBe(0);
    expect(wrong).toBe(0);
    expect(wrongAtClient).toBe(0);
    expect(answered).toBe(TOTAL);
    const half = Math.floor(samples.length / 2);
    const troughEarly = Math.min(...samples.slice(0, half));
    const troughLate = Math.min(...samples.slice(half));
    expect(samples.length).toBeGreaterThanOrEqual(4);
    expect(troughLate - troughEarly).toBeLessThan(24);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(tap.packets).toBeGreaterThanOrEqual(TOTAL);
    expect(tap.tableSize).toBeLessThanOrEqual(tap.capacity);
  }, TIME_LIMIT_MS + 30_000);
});
