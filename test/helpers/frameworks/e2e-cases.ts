// The end-to-end cases every framework integration must pass, with TOA SYNs from the netns
// harness and real HTTP clients inside it. Each app answers GET / with
// { real: <realRemoteAddress()>, ip: <the framework's ip> }.
import { ADDR, ToaNet } from '../netns/toa-net';

export const trustProxy = [ADDR.lip4, ADDR.lip6];

export interface Answer {
  real: { address: string; port: number; family: string; source: string; proxy?: { address: string } };
  ip: string;
}

export interface Started {
  port: number;
  close(): Promise<void>;
}

/** Starts the framework's app with these integration options on a socket in the namespace. */
export type StartApp = (netns: ToaNet, options: { trustProxy: string[]; setIp?: boolean; ack?: boolean }) => Promise<Started>;

export async function ask(netns: ToaNet, port: number, vip: string, localAddress: string, count = 1) {
  const result = await netns.request({ protocol: 'http', vip, port, localAddress, path: '/', count });
  expect(result.responses).toHaveLength(count);
  for (const r of result.responses) expect(r.status).toBe(200);
  const answers = result.responses.map((r) => JSON.parse(r.body) as Answer);
  return { ...result, answers };
}

/**
 * Registers the cases in the current describe block. `netns()` gives the suite's ToaNet;
 * `clients` says which client addresses (of ADDR.clients4/6, by index) this suite may use,
 * so suites sharing a namespace never share a proxy rule.
 */
export function frameworkCases(netns: () => ToaNet, start: StartApp, clients: { v4: number; v6: number }): void {
  const c4 = (i: number) => ADDR.clients4[(clients.v4 + i) % ADDR.clients4.length];
  const c6 = (i: number) => ADDR.clients6[(clients.v6 + i) % ADDR.clients6.length];
  let app: Started | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('an IPv4 proxy: the IPv4 client and its port', async () => {
    app = await start(netns(), { trustProxy });
    const { answers, localPort } = await ask(netns(), app.port, ADDR.vip4, c4(0));
    expect(answers[0].real).toEqual({
      address: c4(0), port: localPort, family: 'IPv4', source: 'toa', kind: 200, packet: 'syn',
      proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
    });
  });

  it('an IPv6 proxy: the IPv6 client; and an IPv4 client behind an IPv6 proxy', async () => {
    app = await start(netns(), { trustProxy });
    const six = await ask(netns(), app.port, ADDR.vip6, c6(0));
    expect(six.answers[0].real).toMatchObject({
      address: c6(0), port: six.localPort, family: 'IPv6', source: 'toa', proxy: { address: ADDR.lip6 },
    });
    const fourOverSix = await ask(netns(), app.port, ADDR.vip4to6, c4(1));
    expect(fourOverSix.answers[0].real).toMatchObject({
      address: c4(1), port: fourOverSix.localPort, family: 'IPv4', source: 'toa', proxy: { address: ADDR.lip6 },
    });
  });

  it('keep-alive: 3 requests on one connection give the same answer', async () => {
    app = await start(netns(), { trustProxy });
    const { answers, localPort, responses } = await ask(netns(), app.port, ADDR.vip4, c4(2), 3);
    expect(new Set(responses.map((r) => r.localPort))).toEqual(new Set([localPort]));
    for (const a of answers) expect(a.real).toEqual(answers[0].real);
    expect(answers[0].real).toMatchObject({ address: c4(2), port: localPort, source: 'toa' });
  });

  it('a connection without TOA: the peer (the proxy)', async () => {
    await netns().rule(c4(3), { where: 'none' });
    app = await start(netns(), { trustProxy });
    const { answers } = await ask(netns(), app.port, ADDR.vip4, c4(3));
    expect(answers[0].real).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
  });

  it("an untrusted peer's TOA is ignored: the peer", async () => {
    await netns().rule(c4(4), { where: 'syn', lip: ADDR.untrusted4 });
    app = await start(netns(), { trustProxy });
    const { answers } = await ask(netns(), app.port, ADDR.vip4, c4(4));
    expect(answers[0].real).toEqual({ address: ADDR.untrusted4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
    expect(answers[0].ip).not.toBe(c4(4));
  });

  it('setIp: true makes the framework ip the client (IPv4 and IPv6)', async () => {
    app = await start(netns(), { trustProxy, setIp: true });
    const four = await ask(netns(), app.port, ADDR.vip4, c4(5));
    expect(four.answers[0].ip).toBe(c4(5));
    const six = await ask(netns(), app.port, ADDR.vip6, c6(1));
    expect(six.answers[0].ip).toBe(c6(1));
  });

  it('setIp: false (the default) leaves the framework ip alone: the proxy', async () => {
    app = await start(netns(), { trustProxy });
    const { answers } = await ask(netns(), app.port, ADDR.vip4, c4(6));
    expect(answers[0].real.address).toBe(c4(6));
    expect(answers[0].ip.replace(/^::ffff:/, '')).toBe(ADDR.lip4);
  });

  it('ack: true reads a TOA that only the handshake ACK carries', async () => {
    await netns().rule(c4(7), { where: 'ack' });
    app = await start(netns(), { trustProxy, ack: true });
    // A middleware meets its server at the first request: that one opens the tap if needed.
    await ask(netns(), app.port, ADDR.vip4, c4(8));
    const { answers, localPort } = await ask(netns(), app.port, ADDR.vip4, c4(7));
    expect(answers[0].real).toMatchObject({ address: c4(7), port: localPort, source: 'toa', proxy: { address: ADDR.lip4 } });
  });

  it('without ack, a TOA only in the ACK is not seen: the peer', async () => {
    await netns().rule(c4(7), { where: 'ack' });
    app = await start(netns(), { trustProxy });
    await ask(netns(), app.port, ADDR.vip4, c4(8));
    const { answers } = await ask(netns(), app.port, ADDR.vip4, c4(7));
    expect(answers[0].real).toMatchObject({ address: ADDR.lip4, source: 'peer' });
  });
}
