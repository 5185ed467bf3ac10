// Seeded mutations of a byte vector for the parsers' sweeps (parse.test.ts, proxy-parse.test.ts):
// bit flips, random and "interesting" bytes, truncation, insertion, deletion, and a piece of the
// format's own (an option, a TLV) dropped in. Deterministic for a given `random`.

/** A small seeded PRNG (mulberry32): the same sweep on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Mutation {
  /** Byte values the parser branches on. */
  interesting: readonly number[];
  /** At most this many mutations per vector (at least one). */
  maxRounds: number;
  /** A well-formed piece of the format to insert (`pick(n)` is a random integer below n). */
  piece(pick: (n: number) => number): number[];
}

export function mutate(base: Uint8Array, random: () => number, m: Mutation): Uint8Array {
  let bytes = Array.from(base);
  const pick = (n: number) => Math.floor(random() * n);
  const rounds = 1 + pick(m.maxRounds);
  for (let r = 0; r < rounds; r++) {
    const at = pick(bytes.length + 1);
    switch (pick(7)) {
      case 0:
        if (at < bytes.length) bytes[at] ^= 1 << pick(8);
        break;
      case 1:
        if (at < bytes.length) bytes[at] = pick(256);
        break;
      case 2:
        if (at < bytes.length) bytes[at] = m.interesting[pick(m.interesting.length)];
        break;
      case 3:
        bytes = bytes.slice(0, at);
        break;
      case 4:
        bytes.splice(at, 0, pick(256));
        break;
      case 5:
        bytes.splice(at, 1);
        break;
      default:
        bytes.splice(at, 0, ...m.piece(pick));
    }
  }
  return new Uint8Array(bytes);
}
