// The gate's way to a header that was not whole at accept: the socket is read as a stream until
// its header is in, then handed to the server with whatever followed the header put back in front
// (unshift), or refused; bounded by the header timeout.
import type * as net from 'node:net';
import { PROXY_STATUS } from '../addon/native';
import type { Endpoint } from '../core/types';
import type { ProxyRefusedReason } from '../core/metrics';
import { accept, refuse, type GateState, type RawSocket } from './gate-state';
import type { ProxyHeader } from './header';
import { recordedHeader, recordedLength, recordedReason, recordParser } from './record';

/**
 * One connection's header read from the stream, as it arrives. One object holds its state; the
 * handlers are bound to it once.
 */
export class StreamGate {
  private data: Buffer | undefined = undefined;
  private done = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly onReadable = () => this.readable();
  private readonly onEnd = () => this.end();
  private readonly onError = () => this.error();
  private readonly onClose = () => this.cleanup();

  constructor(
    private readonly server: net.Server,
    private readonly state: GateState,
    private readonly socket: RawSocket,
    private readonly peer: Endpoint,
  ) {}

  start(): void {
    const socket = this.socket;
    this.timer = setTimeout(() => this.expire(), this.state.pp.timeoutMs);
    this.timer.unref();
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('readable', this.onReadable);
  }

  private cleanup(): void {
    this.done = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    socket.removeListener('readable', this.onReadable);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  private fail(refused: ProxyRefusedReason, reason?: string): void {
    this.cleanup();
    refuse(this.server, this.state, this.peer, this.socket, refused, reason);
  }

  private finish(rest: Buffer | undefined): void {
    this.cleanup();
    if (rest !== undefined && rest.length > 0) this.socket.unshift(rest);
    this.state.emit.call(this.server, 'connection', this.socket);
  }

  private examine(): void {
    const buf = this.data!;
    const { required, maxHeaderSize } = this.state.pp;
    const status = recordParser()(buf, maxHeaderSize);
    let length = 0;
    let reason = '';
    let header: ProxyHeader | undefined;
    if (status === PROXY_STATUS.ok) {
      length = recordedLength();
      header = recordedHeader(this.peer, buf);
    } else if (status === PROXY_STATUS.malformed || status === PROXY_STATUS.tooLarge) reason = recordedReason();
    switch (status) {
      case PROXY_STATUS.ok: {
        this.cleanup();
        if (buf.length > length) this.socket.unshift(buf.subarray(length));
        accept(this.server, this.state, this.socket, header!);
        return;
      }
      case PROXY_STATUS.incomplete:
        if (buf.length >= maxHeaderSize) this.fail('tooLarge');
        return;
      case PROXY_STATUS.notProxy:
        if (required) this.fail('missing');
        else this.finish(buf);
        return;
      case PROXY_STATUS.tooLarge:
        this.fail('tooLarge', reason);
        return;
      default:
        this.fail('malformed', reason);
    }
  }

  private readable(): void {
    let chunk: Buffer | null;
    while (!this.done && (chunk = this.socket.read() as Buffer | null) !== null) {
      this.data = this.data === undefined ? chunk : Buffer.concat([this.data, chunk]);
      this.examine();
    }
  }

  // The peer closed before a whole header: a connection without a byte is a TCP health check or a
  // port probe (closed, not counted); one that stopped inside a header is a malformed one.
  private end(): void {
    if (this.data === undefined) {
      this.cleanup();
      this.socket.destroy();
    } else this.fail('malformed', 'the connection ended inside the header');
  }

  private error(): void {
    this.cleanup();
    this.socket.destroy();
  }

  private expire(): void {
    if (this.done) return;
    // Optional mode and not a byte yet: the peer may wait for the server to speak first.
    if (!this.state.pp.required && this.data === undefined) this.finish(undefined);
    else this.fail('timeout');
  }
}
