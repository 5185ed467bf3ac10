// Compiles `kinds` once into the 256-byte table the native parser reads: for each TCP option kind,
// the layouts (bit set) under which an option of that kind counts as a TOA.
import type { KindSpec, ToaLayout } from './types';

export const LAYOUT_BITS: Readonly<Record<ToaLayout, number>> = {
  ipv4: 1, // len 8:  port, IPv4
  ipv6: 2, // len 20: port, IPv6
  'ali-cdn': 4, // len 7/19: version 1, address
  vtoa: 8, // len 20: cport, cip, vid, vip, vport
  'ali-ddos': 16, // len 40: port, IPv6, 20 bytes about the Anti-DDoS node
};

// Known kinds and what they carry (docs/formats.md). Any other kind gets the two generic layouts.
const KNOWN_KIND_LAYOUTS: Record<number, number> = {
  200: LAYOUT_BITS.ipv4,
  249: LAYOUT_BITS['ali-ddos'],
  253: LAYOUT_BITS.ipv4 | LAYOUT_BITS.ipv6,
  254: LAYOUT_BITS.ipv4 | LAYOUT_BITS.ipv6,
  28: LAYOUT_BITS['ali-cdn'],
  252: LAYOUT_BITS.vtoa,
};
const GENERIC_LAYOUTS = LAYOUT_BITS.ipv4 | LAYOUT_BITS.ipv6;
const TWENTY_BYTE_LAYOUTS = LAYOUT_BITS.ipv6 | LAYOUT_BITS.vtoa;

// 249 is read by default: a 40-byte option of that kind (the whole option space) is unmistakable.
export const DEFAULT_KINDS: readonly number[] = Object.freeze([200, 249, 253, 254]);

// EOL, NOP, MSS, window scale, SACK, timestamps: every SYN has some of these.
const MAX_RESERVED_KIND = 8;

function checkKind(kind: unknown): number {
  if (typeof kind !== 'number' || !Number.isInteger(kind)) {
    throw new TypeError(`kinds: each kind must be an integer from 9 to 255, got ${String(kind)}`);
  }
  if (kind <= MAX_RESERVED_KIND || kind > 255) {
    throw new RangeError(
      `kinds: ${kind} is not usable as a TOA kind (standard TCP options 0-8 are reserved; max 255)`,
    );
  }
  return kind;
}

export function compileKinds(kinds: readonly KindSpec[] | undefined): Uint8Array {
  const table = new Uint8Array(256);
  const list = kinds ?? DEFAULT_KINDS;
  if (!Array.isArray(list)) {
    throw new TypeError(`kinds must be an array of option kinds, got ${typeof list}`);
  }
  if (list.length === 0) throw new RangeError('kinds must name at least one option kind');
  for (const spec of list as unknown[]) {
    if (typeof spec === 'object' && spec !== null) {
      const { kind, layout } = spec as { kind?: unknown; layout?: unknown };
      const checked = checkKind(kind);
      if (typeof layout !== 'string' || !(layout in LAYOUT_BITS)) {
        throw new TypeError(
          `kinds: layout of kind ${checked} must be one of ${Object.keys(LAYOUT_BITS).join(', ')}, got ${String(layout)}`,
        );
      }
      table[checked] |= LAYOUT_BITS[layout as ToaLayout];
    } else {
      const checked = checkKind(spec);
      table[checked] |= KNOWN_KIND_LAYOUTS[checked] ?? GENERIC_LAYOUTS;
    }
  }
  for (let kind = 0; kind < 256; kind++) {
    if ((table[kind] & TWENTY_BYTE_LAYOUTS) === TWENTY_BYTE_LAYOUTS) {
      throw new RangeError(`kinds: kind ${kind} cannot be both 'ipv6' and 'vtoa' (both are 20 bytes long)`);
    }
  }
  return table;
}

/** Whether a kind table reads `option` (of any table's listing) as TOA-shaped. */
export function accepts(table: Uint8Array, option: { kind: number; layout: number }): boolean {
  return (table[option.kind] & option.layout) !== 0;
}

// The kernel's answer is read once for every resolver, so the packet is parsed with every kind
// any resolver might want (the tap's drains too); each resolver then keeps only its own kinds.
const KIND_TABLE_ALL = new Uint8Array(256);

/** Every kind any compiled options read (live: grows as options are compiled). */
export function kindTableAll(): Uint8Array {
  return KIND_TABLE_ALL;
}

/** Adds a compiled table to kindTableAll(). */
export function registerKindTable(table: Uint8Array): void {
  for (let i = 0; i < 256; i++) KIND_TABLE_ALL[i] |= table[i];
}
