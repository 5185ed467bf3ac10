// The end-to-end server most netns tests ask: one http server in the test process, listening in a
// ToaNet of its own (the full-NAT proxy in front), enable()d with the ACK tap, that answers each
// request with a JSON body (by default realRemoteAddress(req.socket) trusting the harness's LIPs).
// Made in the describe block's beforeAll, closed in its afterAll; the proxy's rules are cleared
// before each test.
import * as http from 'http';
import { ADDR, ToaNet } from './toa-net';
import type { EnableOptions, RealAddress } from '../../../lib/index';

type Toa = typeof import('../../../lib/index');

/** The harness's proxy addresses (LIP4, LIP6): the trustProxy of the default answer. */
export const TRUST_LIPS = [ADDR.lip4, ADDR.lip6];

export interface E2eServerSetup {
  /** What the server answers (as JSON); default realRemoteAddress(req.socket, { trustProxy: TRUST_LIPS }). */
  answer?: (toa: Toa, req: http.IncomingMessage) => unknown;
  /** enable(server, options); default { ack: true }. */
  enable?: EnableOptions;
}

export interface E2eServer {
  readonly netns: ToaNet;
  /** lib/index as this test file loaded it (its own module registry: metrics start at zero). */
  readonly toa: Toa;
  readonly server: http.Server;
  /** The server's port (the VIPs' port too). */
  readonly port: number;
  /** One request from `localAddress` to `vip`: the server's answer and the client's own port. */
  ask<T = RealAddress>(localAddress: string, vip?: string): Promise<{ answer: T; localPort: number }>;
}

export function useE2eServer(setup: E2eServerSetup = {}): E2eServer {
  const state: { netns?: ToaNet; toa?: Toa; server?: http.Server; port?: number } = {};
  const need = <K extends keyof typeof state>(key: K): NonNullable<(typeof state)[K]> => {
    const value = state[key];
    if (value === undefined) throw new Error(`useE2eServer: ${key} is used before beforeAll made it`);
    return value as NonNullable<(typeof state)[K]>;
  };
  beforeAll(async () => {
    state.netns = await ToaNet.create();
    const toa = (state.toa = await import('../../../lib/index'));
    const answer = setup.answer ?? ((t: Toa, req: http.IncomingMessage) => t.realRemoteAddress(req.socket, { trustProxy: TRUST_LIPS }));
    state.server = http.createServer((req, res) => res.end(JSON.stringify(answer(toa, req))));
    toa.enable(state.server, setup.enable ?? { ack: true });
    state.port = await state.netns.serve(state.server);
  });
  afterAll(async () => {
    state.server?.closeAllConnections();
    await new Promise((r) => (state.server ? state.server.close(r) : r(undefined)));
    await state.netns?.close();
  });
  beforeEach(() => need('netns').clearRules());
  return {
    get netns() {
      return need('netns');
    },
    get toa() {
      return need('toa');
    },
    get server() {
      return need('server');
    },
    get port() {
      return need('port');
    },
    async ask<T = RealAddress>(localAddress: string, vip: string = ADDR.vip4) {
      const r = await need('netns').request({ protocol: 'http', vip, port: need('port'), localAddress, path: '/', count: 1 });
      return { answer: JSON.parse(r.responses[0].body) as T, localPort: r.localPort };
    },
  };
}
