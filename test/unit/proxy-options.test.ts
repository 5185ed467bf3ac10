// The proxyProtocol option and NODE_TOA_PROXY_PROTOCOL: every bad value is refused where it is
// passed, with the error class and a message naming the option and the value. No socket opens
// (the servers are never listened on).
import * as http from 'node:http';
import * as toa from '../../lib/index';
import { EnvError, optionsFromEnv } from '../../lib/install/env';
import { compileProxyProtocol } from '../../lib/proxy-protocol/options';
import { toaMiddleware } from '../../lib/express';

const W = 'enable(server, options)';

describe('proxyProtocol', () => {
  test.each([
    [false, null],
    [undefined, null],
    [true, { required: true, timeoutMs: 5000, maxHeaderSize: 4096 }],
    ['required', { required: true, timeoutMs: 5000, maxHeaderSize: 4096 }],
    ['optional', { required: false, timeoutMs: 5000, maxHeaderSize: 4096 }],
    [{}, { required: true, timeoutMs: 5000, maxHeaderSize: 4096 }],
    [{ mode: 'optional', timeout: 1, maxHeaderSize: 16 }, { required: false, timeoutMs: 1, maxHeaderSize: 16 }],
    [{ mode: 'required', timeout: 600000, maxHeaderSize: 65551 }, { required: true, timeoutMs: 600000, maxHeaderSize: 65551 }],
  ])('%j compiles to %j', (value, compiled) => {
    expect(compileProxyProtocol(value, W)).toEqual(compiled);
  });

  test.each([
    ['yes', TypeError, "options.proxyProtocol must be true, false, 'required', 'optional' or an object such as { mode: 'required', timeout: 5000, maxHeaderSize: 4096 }, got 'yes'"],
    [1, TypeError, 'options.proxyProtocol must be true, false,'],
    [null, TypeError, 'options.proxyProtocol must be true, false,'],
    [[], TypeError, 'options.proxyProtocol must be true, false,'],
    [{ mode: 'maybe' }, TypeError, "options.proxyProtocol.mode must be 'required' or 'optional', got 'maybe'"],
    [{ timeout: '5s' }, TypeError, "options.proxyProtocol.timeout must be an integer, got '5s'"],
    [{ timeout: 1.5 }, TypeError, 'options.proxyProtocol.timeout must be an integer, got 1.5'],
    [{ timeout: 0 }, RangeError, 'options.proxyProtocol.timeout must be from 1 to 600000, got 0'],
    [{ timeout: 600001 }, RangeError, 'options.proxyProtocol.timeout must be from 1 to 600000, got 600001'],
    [{ maxHeaderSize: 15 }, RangeError, 'options.proxyProtocol.maxHeaderSize must be from 16 to 65551, got 15'],
    [{ maxHeaderSize: 65552 }, RangeError, 'options.proxyProtocol.maxHeaderSize must be from 16 to 65551, got 65552'],
    [{ maxHeaderSize: NaN }, TypeError, 'options.proxyProtocol.maxHeaderSize must be an integer, got NaN'],
    [{ timeOut: 5 }, TypeError, "unknown option 'proxyProtocol.timeOut' (known: mode, timeout, maxHeaderSize)"],
  ])('%j: %p', (value, kind, message) => {
    const server = http.createServer();
    expect(() => toa.enable(server, { proxyProtocol: value as toa.ProxyProtocolOption })).toThrow(kind);
    expect(() => toa.enable(server, { proxyProtocol: value as toa.ProxyProtocolOption })).toThrow(`${W}: ${message}`);
  });

  test('listen() and install() check it where it is passed', () => {
    const server = http.createServer();
    expect(() => toa.listen(server, { port: 0, proxyProtocol: { timeout: -1 } })).toThrow(
      new RangeError('listen(server, options): options.proxyProtocol.timeout must be from 1 to 600000, got -1'),
    );
    expect(server.listening).toBe(false);
    expect(() => toa.install({ proxyProtocol: 'sometimes' as 'optional' })).toThrow(
      "install(options): options.proxyProtocol must be true, false, 'required', 'optional'",
    );
    expect(toa.installed()).toBe(false);
  });

  test('trustProxy on enable() goes with proxyProtocol, and is checked', () => {
    const server = http.createServer();
    expect(() => toa.enable(server, { trustProxy: 'loopback' })).toThrow(
      new TypeError(`${W}: options.trustProxy is read with proxyProtocol or ack only (pass it to realRemoteAddress(), configure() or install() otherwise)`),
    );
    expect(() => toa.enable(server, { proxyProtocol: true, trustProxy: 42 as unknown as string })).toThrow(TypeError);
    expect(() => toa.enable(server, { proxyProtocol: true, trustProxy: ['not an ip'] })).toThrow(/^trustProxy: /);
  });

  test('Express middleware refuses it: it runs after the header', () => {
    expect(() => toaMiddleware({ proxyProtocol: true } as never)).toThrow(
      new TypeError(
        'toaMiddleware(options): proxyProtocol is a server option: the middleware runs after the header is read; ' +
          'pass it to toa.enable(server, { proxyProtocol }) or toa.listen(server, { port, proxyProtocol })',
      ),
    );
  });
});

describe('NODE_TOA_PROXY_PROTOCOL', () => {
  test.each([
    ['required', true],
    ['optional', 'optional'],
    ['off', false],
    [' optional ', 'optional'],
  ])('%p -> proxyProtocol %p', (value, option) => {
    expect(optionsFromEnv({ NODE_TOA_PROXY_PROTOCOL: value })).toEqual({ proxyProtocol: option });
  });

  test('unset or empty: left out', () => {
    expect(optionsFromEnv({ NODE_TOA_PROXY_PROTOCOL: '' })).toEqual({});
  });

  test.each(['on', 'true', 'v2', 'REQUIRED'])('%p is an EnvError naming the variable and the value', (value) => {
    let error: unknown;
    try {
      optionsFromEnv({ NODE_TOA_PROXY_PROTOCOL: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EnvError);
    expect((error as EnvError).variable).toBe('NODE_TOA_PROXY_PROTOCOL');
    expect((error as EnvError).message).toBe(`node-toa: NODE_TOA_PROXY_PROTOCOL='${value}' must be required, optional or off`);
  });
});
