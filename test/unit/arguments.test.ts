// Every public function, given the wrong thing: a TypeError or RangeError that names what was
// wrong, thrown where it was passed — never a crash, never a silent default.
import * as net from 'node:net';
import * as toa from '../../lib/index';
import { toaMiddleware } from '../../lib/express';
import { toaKoa } from '../../lib/koa';

type Case = [string, () => unknown, new (...args: never[]) => Error, string | RegExp];

const server = () => net.createServer();

const cases: Case[] = [
  ['realRemoteAddress(undefined)', () => toa.realRemoteAddress(undefined as never), TypeError, 'socket must be a net.Socket, got undefined'],
  ['realRemoteAddress("1.2.3.4")', () => toa.realRemoteAddress('1.2.3.4' as never), TypeError, 'socket must be a net.Socket, got string'],
  ['realRemoteAddress(s, [])', () => toa.realRemoteAddress({}, [] as never), TypeError, 'realRemoteAddress: options must be an object, got an array'],
  ['realRemoteAddress(s, {trustProxy: 1})', () => toa.realRemoteAddress({}, { trustProxy: 1 as never }), TypeError, /trustProxy must be a boolean.*got 1/],
  ['realRemoteAddress(s, {kinds: [0]})', () => toa.realRemoteAddress({}, { kinds: [0] }), RangeError, /kinds: 0 is not usable/],
  ['configure(null)', () => toa.configure(null as never), TypeError, 'configure: options must be an object, got null'],
  ['configure({ trustProxy: "10.0.0.0/99" })', () => toa.configure({ trustProxy: '10.0.0.0/99' }), TypeError, /trustProxy: invalid range on address: 10.0.0.0\/99/],
  ['createResolver({ setIp: true })', () => toa.createResolver({ setIp: true } as never), TypeError, "createResolver: unknown option 'setIp'"],
  ['enable(undefined)', () => toa.enable(undefined as never), TypeError, /enable\(server\): server must be a net.Server/],
  ['enable(server, 5)', () => toa.enable(server(), 5 as never), TypeError, 'enable(server, options): options must be an object, got number'],
  ['enable(server, { ack: "yes" })', () => toa.enable(server(), { ack: 'yes' as never }), TypeError, /options.ack must be a boolean or an object/],
  ['enable(server, { ack: { capacity: 0 } })', () => toa.enable(server(), { ack: { capacity: 0 } }), RangeError, /options.ack.capacity must be from 1 to/],
  ['enable(server, { syn: true })', () => toa.enable(server(), { syn: true } as never), TypeError, "enable(server, options): unknown option 'syn'"],
  ['isEnabled(null)', () => toa.isEnabled(null as never), TypeError, 'isEnabled(server): server must be a net.Server, got null'],
  ['listen(null, { port: 1 })', () => toa.listen(null as never, { port: 1 }), TypeError, /listen\(server, options\): server must be a net.Server/],
  ['listen(server)', () => toa.listen(server(), undefined as never), TypeError, /options must be an object such as \{ port: 3000 \}/],
  ['listen(server, { port: 70000 })', () => toa.listen(server(), { port: 70000 }), RangeError, /options.port must be from 0 to 65535, got 70000/],
  ['toaMiddleware({ setIp: "yes" })', () => toaMiddleware({ setIp: 'yes' as never }), TypeError, "setIp must be a boolean, got 'yes'"],
  ['toaMiddleware({ trust: true })', () => toaMiddleware({ trust: true } as never), TypeError, /unknown option 'trust'/],
  ['toaKoa(42)', () => toaKoa(42 as never), TypeError, /options must be an object, got number/],
];

describe('bad arguments', () => {
  it.each(cases)('%s', (_name, call, errorClass, message) => {
    let thrown: unknown;
    try {
      call();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(errorClass);
    expect((thrown as Error).message).toMatch(message);
  });
});
