// The native datagram header parser (native/dgram_header.h over spp_parse.h and proxy_parse.h) on
// byte vectors (test/helpers/vectors/udp-vectors.ts), through the record lib/udp/header.ts decodes.
import { DGRAM, dgramParserAvailable, parseDgram, recordedClient, recordedLength, recordedOther, recordedReason } from '../../lib/udp/header';
import { DGRAM_VECTORS, PROXY, SPP, sppHeader } from '../helpers/vectors/udp-vectors';

beforeAll(() => {
  expect(dgramParserAvailable()).toBe(true);
});

describe.each(DGRAM_VECTORS)('$name', (v) => {
  it(`is ${v.kind}`, () => {
    const kind = parseDgram(v.bytes, v.formats, v.maxSize ?? 4096);
    expect(kind).toBe(DGRAM[v.kind]);
    if (v.length !== undefined) expect(recordedLength()).toBe(v.length);
    if (v.client !== undefined) expect(recordedClient()).toEqual(v.client);
    if (v.other !== undefined) expect(recordedOther()).toEqual(v.other);
    if (v.kind === 'malformed' || v.kind === 'tooLarge') {
      expect(recordedReason()).not.toBe('');
      if (v.reason !== undefined) expect(recordedReason()).toBe(v.reason);
    }
  });

  it('reads nothing past the header it names, and no byte before the datagram ends decides it twice', () => {
    // The same bytes in a larger buffer (a Buffer from the pool at an offset) answer the same.
    const pooled = Buffer.concat([Buffer.from('garbage before'), Buffer.from(v.bytes)]).subarray(14);
    expect(parseDgram(pooled, v.formats, v.maxSize ?? 4096)).toBe(DGRAM[v.kind]);
  });
});

describe('every prefix of an SPP header is refused, never read as a client', () => {
  const whole = sppHeader({ address: '192.0.2.1', port: 1 }, { address: '198.51.100.1', port: 2 });
  it.each(Array.from({ length: 38 }, (_, n) => n))('%i bytes', (n) => {
    const kind = parseDgram(whole.subarray(0, n), SPP | PROXY, 4096);
    expect(kind).toBe(n < 2 ? DGRAM.none : DGRAM.malformed);
  });
});

describe('the parser binding', () => {
  it('refuses what is not bytes, and formats/maxSize that are not numbers', () => {
    // The addon's errors come from Node's realm, not jest's: compared by name and message.
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return { name: (error as Error).name, message: (error as Error).message };
      }
      return undefined;
    };
    expect(thrown(() => parseDgram('text' as unknown as Uint8Array, SPP, 4096))).toEqual({
      name: 'TypeError',
      message: 'data must be a Uint8Array or Buffer',
    });
    const numbers = { name: 'TypeError', message: 'parser(data, formats, maxSize): formats and maxSize must be numbers' };
    expect(thrown(() => parseDgram(new Uint8Array(2), 'x' as unknown as number, 4096))).toEqual(numbers);
    expect(thrown(() => parseDgram(new Uint8Array(2), SPP, undefined as unknown as number))).toEqual(numbers);
  });
});
