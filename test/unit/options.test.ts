// Every option error: the class, and a message that names the option and the bad value.
import { configure, createResolver, realRemoteAddress } from '../../lib/index';
import { compileKinds } from '../../lib/core/kinds';
import { compileTrust } from '../../lib/core/trust';

describe('trustProxy', () => {
  it.each([
    [false, '198.51.100.2', false],
    [true, '198.51.100.2', true],
    ['198.51.100.2', '198.51.100.2', true],
    ['198.51.100.2', '198.51.100.3', false],
    ['198.51.100.0/24, 2001:db8::/32', '2001:db8:b::2', true],
    ['198.51.100.0/24, 2001:db8::/32', '203.0.113.1', false],
    [['loopback'], '127.0.0.1', true],
    [['loopback'], '::1', true],
    [['uniquelocal'], '10.1.2.3', true],
    [['linklocal'], 'fe80::1', true],
    [[], '198.51.100.2', false],
  ] as const)('%j trusts %s: %s', (value, address, expected) => {
    expect(compileTrust(value as never)(address)).toBe(expected);
  });

  it('answers the same after its memo of addresses overflowed (a flood of sources)', () => {
    const trust = compileTrust('198.51.100.0/24');
    for (let i = 0; i < 10_000; i++) {
      const address = `203.0.${(i >> 8) & 255}.${i & 255}`;
      expect(trust(address)).toBe(false);
      if (i % 997 === 0) expect(trust('198.51.100.2')).toBe(true);
    }
    expect(trust('198.51.100.200')).toBe(true);
    expect(trust('198.51.101.1')).toBe(false);
  });

  it('trusts an IPv4-mapped peer by its IPv4 range', () => {
    expect(compileTrust('198.51.100.0/24')('::ffff:198.51.100.2')).toBe(true);
  });

  it('calls a function with the address, and only true trusts', () => {
    const seen: string[] = [];
    const trust = compileTrust((a) => {
      seen.push(a);
      return a === '198.51.100.2';
    });
    expect(trust('198.51.100.2')).toBe(true);
    expect(trust('198.51.100.9')).toBe(false);
    expect(compileTrust((() => 1) as never)('198.51.100.2')).toBe(false);
    expect(seen).toEqual(['198.51.100.2', '198.51.100.9']);
  });

  it.each([
    ['not-an-ip', /trustProxy: invalid IP address: not-an-ip/],
    ['198.51.100.0/33', /trustProxy: invalid range on address: 198.51.100.0\/33/],
    [[42], /trustProxy: every entry must be a string.*got 42/],
    [42, /trustProxy must be a boolean, a string, an array of strings or a function, got 42/],
    [{ a: 1 }, /got \{"a":1\}/],
  ])('rejects %j with a TypeError', (value, message) => {
    expect(() => compileTrust(value as never)).toThrow(TypeError);
    expect(() => compileTrust(value as never)).toThrow(message);
  });
});

describe('kinds', () => {
  it('defaults to the 200, 249, 253 and 254 rows', () => {
    const table = compileKinds(undefined);
    expect([...table.keys()].filter((k) => table[k] !== 0)).toEqual([200, 249, 253, 254]);
    expect(table[200]).toBe(1);
    expect(table[249]).toBe(16);
    expect(table[253]).toBe(3);
    expect(table[254]).toBe(3);
  });

  it('matches the native parser’s own defaults', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { binding } = require('../../lib/addon/binding');
    expect(Buffer.from(compileKinds(undefined))).toEqual(Buffer.from(binding.testing.defaultKindTable()));
  });

  it('opts in to 28 and 252 with their own layouts, and takes named layouts', () => {
    const table = compileKinds([200, 28, 252, { kind: 230, layout: 'ipv4' }]);
    expect(table[28]).toBe(4);
    expect(table[252]).toBe(8);
    expect(table[230]).toBe(1);
    expect(table[254]).toBe(0);
  });

  it('gives an unknown kind the two generic layouts', () => {
    expect(compileKinds([199])[199]).toBe(3);
  });

  it.each([
    [[], RangeError, 'kinds must name at least one option kind'],
    ['200', TypeError, 'kinds must be an array of option kinds, got string'],
    [[1], RangeError, 'kinds: 1 is not usable as a TOA kind'],
    [[8], RangeError, 'kinds: 8 is not usable as a TOA kind'],
    [[256], RangeError, 'kinds: 256 is not usable as a TOA kind'],
    [[200.5], TypeError, 'kinds: each kind must be an integer from 9 to 255, got 200.5'],
    [['200'], TypeError, 'kinds: each kind must be an integer from 9 to 255, got 200'],
    [[{ kind: 252, layout: 'ipv5' }], TypeError, 'kinds: layout of kind 252 must be one of ipv4, ipv6, ali-cdn, vtoa, ali-ddos, got ipv5'],
    [[252, { kind: 252, layout: 'ipv6' }], RangeError, "kinds: kind 252 cannot be both 'ipv6' and 'vtoa'"],
  ])('rejects %j', (value, errorClass, message) => {
    expect(() => compileKinds(value as never)).toThrow(errorClass);
    expect(() => compileKinds(value as never)).toThrow(message);
  });
});

describe('options objects', () => {
  const socketLike = { remoteAddress: '198.51.100.7', remotePort: 4000, remoteFamily: 'IPv4' };

  it('rejects unknown keys where they are passed', () => {
    expect(() => realRemoteAddress(socketLike, { trustproxy: true } as never)).toThrow(
      new TypeError("realRemoteAddress: unknown option 'trustproxy' (known: trustProxy, kinds, multiple)"),
    );
    expect(() => createResolver({ kind: [200] } as never)).toThrow(
      new TypeError("createResolver: unknown option 'kind' (known: trustProxy, kinds, multiple)"),
    );
  });

  it('rejects options that are not an object', () => {
    expect(() => realRemoteAddress(socketLike, 'loopback' as never)).toThrow(
      new TypeError('realRemoteAddress: options must be an object, got string'),
    );
    expect(() => realRemoteAddress(socketLike, null as never)).toThrow(
      new TypeError('realRemoteAddress: options must be an object, got null'),
    );
    expect(() => configure(undefined as never)).toThrow(TypeError);
  });

  it('validates at configure() and createResolver() time, not on the first connection', () => {
    expect(() => configure({ trustProxy: 'nope' })).toThrow(/trustProxy: invalid IP address: nope/);
    expect(() => createResolver({ kinds: [3] })).toThrow(RangeError);
  });

  describe('multiple', () => {
    it.each([
      ['FIRST', "multiple must be one of 'ignore', 'first', 'last', got 'FIRST'"],
      [1, "multiple must be one of 'ignore', 'first', 'last', got 1"],
      [true, "multiple must be one of 'ignore', 'first', 'last', got true"],
      [['first'], "multiple must be one of 'ignore', 'first', 'last', got [\"first\"]"],
      [null, "multiple must be one of 'ignore', 'first', 'last', got null"],
    ])('rejects %j with a TypeError naming the option and the value', (value, message) => {
      expect(() => createResolver({ multiple: value as never })).toThrow(new TypeError(message));
      expect(() => configure({ multiple: value as never })).toThrow(new TypeError(message));
    });

    it("takes 'ignore', 'first' and 'last'", () => {
      for (const multiple of ['ignore', 'first', 'last'] as const) {
        expect(realRemoteAddress(socketLike, { multiple })).toMatchObject({ source: 'peer', address: '198.51.100.7' });
      }
    });
  });

  it('rejects a socket that is not an object', () => {
    expect(() => realRemoteAddress(undefined as never)).toThrow(
      new TypeError('socket must be a net.Socket, got undefined'),
    );
    expect(() => realRemoteAddress(42 as never)).toThrow(new TypeError('socket must be a net.Socket, got number'));
  });
});
