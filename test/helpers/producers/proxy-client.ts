// Clients that write a PROXY header (or anything) on a real loopback connection, in given pieces:
// with setNoDelay and a pause between writes each piece leaves as its own segment.
import * as net from 'node:net';

export interface Exchange {
  /** Everything the server sent until the connection closed or `until` said enough. */
  data: Buffer;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Milliseconds from connect to close (or to `until`). */
  ms: number;
}

export interface ExchangeOptions {
  host?: string;
  /** Pause between pieces, ms. */
  gapMs?: number;
  /** Stop (and close) once the received bytes satisfy this. */
  until?: (data: Buffer) => boolean;
  /** Give up after this long (resolves with what came). */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects, writes `pieces` one by one, collects the answer. Bounded by `timeoutMs` (5 s). */
export function exchange(port: number, pieces: (Uint8Array | string)[], o: ExchangeOptions = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, o.host ?? '127.0.0.1');
    socket.setNoDelay(true);
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => settle(false), o.timeoutMs ?? 5000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (o.until?.(Buffer.concat(chunks))) settle(false);
    });
    socket.on('error', () => settle(true));
    socket.on('close', () => settle(true));
    socket.once('connect', async () => {
      for (const piece of pieces) {
        if (settled || socket.destroyed) return;
        await new Promise<void>((done) => socket.write(piece, () => done()));
        if (o.gapMs) await sleep(o.gapMs);
      }
    });
  });
}

/** Splits bytes into single-byte pieces. */
export function byteByByte(...parts: (Uint8Array | string)[]): Uint8Array[] {
  const all = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
  return Array.from(all, (b) => Uint8Array.of(b));
}

/** A socket connected to 127.0.0.1:port that already wrote `header` (for TLS and HTTP/2 clients). */
export function prewritten(port: number, header: Uint8Array): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.write(header);
  return socket;
}
