// The UOA packet parser (native/uoa_parse.h) on byte vectors (test/helpers/vectors/udp-vectors.ts).
import { binding } from '../../lib/addon/binding';
import { UOA_VECTORS } from '../helpers/vectors/udp-vectors';

const parse = binding?.testing.parseUoaPacket;

beforeAll(() => {
  expect(typeof parse).toBe('function');
});

describe.each(UOA_VECTORS)('$name', (v) => {
  it(`is ${v.status}`, () => {
    const p = parse!(v.bytes);
    expect(p.status).toBe(v.status);
    if (v.client !== undefined) expect(p.client).toEqual(v.client);
    else expect(p.client).toBeUndefined();
    if (v.payloadLength !== undefined) expect(p.payloadLength).toBe(v.payloadLength);
    if (v.status !== 'notUdp') {
      expect(p.source).toEqual({ family: 'IPv4', address: '198.51.100.10', port: 40000 });
      expect(p.destination).toEqual({ family: 'IPv4', address: '203.0.113.5', port: 5353 });
    }
  });

  it('answers the same from a buffer at an offset', () => {
    const pooled = Buffer.concat([Buffer.from('xx'), Buffer.from(v.bytes)]).subarray(2);
    expect(parse!(pooled)).toEqual(parse!(v.bytes));
  });
});
