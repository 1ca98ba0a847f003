/**
 * Address classification for the image fetcher's SSRF guard. Pure functions over IP literals (no DNS, no I/O).
 *
 * `classifyAddress(ip)` returns null for a globally routable unicast address, else the kind of special range the
 * address falls in. IPv6 forms that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated
 * `::ffff:0:a.b.c.d`, deprecated IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by
 * the IPv4 address they carry, so `::ffff:127.0.0.1` is loopback and `2002:a00:1::` is private. Outside these,
 * only IPv6 global unicast (`2000::/3`) can be public. Anything that is not an IP literal is `'invalid'`, never
 * null: the guard fails closed.
 *
 * `AddressGuard` adds the policy: explicit allowances (`allowCidrs`, e.g. the tests' `127.0.0.1/32`) and extra
 * denials (`denyCidrs`). An address is permitted when it is in an allowed range, or when it is public and not in a
 * denied range. Allowances are matched against the IPv4 address of an IPv4-mapped IPv6 address too.
 */
import { isIP } from 'node:net';

export type AddressKind =
  | 'unspecified'     // 0.0.0.0/8, ::  (Linux connects 0.0.0.0 to the local host)
  | 'loopback'        // 127.0.0.0/8, ::1
  | 'private'         // 10/8, 172.16/12, 192.168/16, fec0::/10 (deprecated site-local), 64:ff9b:1::/48 (local NAT64)
  | 'carrier_nat'     // 100.64.0.0/10 (shared address space)
  | 'link_local'      // 169.254.0.0/16, fe80::/10
  | 'cloud_metadata'  // 169.254.169.254, 169.254.170.2, 169.254.169.253, 100.100.100.200, 192.0.0.192, fd00:ec2::254, fd20:ce::254
  | 'unique_local'    // fc00::/7
  | 'multicast'       // 224.0.0.0/4, ff00::/8
  | 'broadcast'       // 255.255.255.255
  | 'documentation'   // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
  | 'benchmarking'    // 198.18.0.0/15, 2001:2::/48
  | 'reserved'        // 240/4, 192.0.0/24, 192.88.99/24, 100::/64, Teredo, ORCHID, anything outside 2000::/3
  | 'invalid';        // not an IP literal

/** Parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export interface ParsedIp {
  family: 4 | 6;
  bytes: Uint8Array;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null; // strict dotted decimal: URL parsing normalised the rest
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | null {
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length === 0) return null;
  // A trailing dotted quad stands for the last two groups.
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    s = s.slice(0, lastColon + 1);
    if (s.endsWith('::')) { /* keep "::" */ } else s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return null;
  const total = head.length + rest.length + tail.length;
  let words: number[];
  if (halves.length === 2) {
    if (total > 7) return null;
    words = [...head, ...new Array<number>(8 - total).fill(0), ...rest, ...tail];
  } else {
    if (total !== 8) return null;
    words = [...head, ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 literal (brackets and an IPv6 zone id are accepted and ignored); null when it is not one. */
export function parseIp(ip: string): ParsedIp | null {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zoneless = s.split('%')[0];
  const kind = isIP(zoneless);
  if (kind === 4) {
    const b = parseIpv4(zoneless);
    return b ? { family: 4, bytes: b } : null;
  }
  if (kind === 6) {
    const b = parseIpv6(s);
    return b ? { family: 6, bytes: b } : null;
  }
  return null;
}

function v4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function inV4(addr: number, base: number, bits: number): boolean {
  if (bits === 0) return true;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return ((addr & mask) >>> 0) === ((base & mask) >>> 0);
}

const V4_METADATA = new Set([
  v4(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle instance metadata
  v4(169, 254, 170, 2),   // AWS ECS task metadata
  v4(169, 254, 169, 253), // AWS VPC DNS
  v4(169, 254, 169, 123), // AWS time sync
  v4(100, 100, 100, 200), // Alibaba Cloud metadata
  v4(192, 0, 0, 192),     // Oracle Cloud (legacy) metadata
]);

// Order matters: more specific ranges first.
const V4_RANGES: Array<[number, number, AddressKind]> = [
  [v4(0, 0, 0, 0), 8, 'unspecified'],
  [v4(10, 0, 0, 0), 8, 'private'],
  [v4(100, 64, 0, 0), 10, 'carrier_nat'],
  [v4(127, 0, 0, 0), 8, 'loopback'],
  [v4(169, 254, 0, 0), 16, 'link_local'],
  [v4(172, 16, 0, 0), 12, 'private'],
  [v4(192, 0, 0, 0), 24, 'reserved'],
  [v4(192, 0, 2, 0), 24, 'documentation'],
  [v4(192, 88, 99, 0), 24, 'reserved'],
  [v4(192, 168, 0, 0), 16, 'private'],
  [v4(198, 18, 0, 0), 15, 'benchmarking'],
  [v4(198, 51, 100, 0), 24, 'documentation'],
  [v4(203, 0, 113, 0), 24, 'documentation'],
  [v4(224, 0, 0, 0), 4, 'multicast'],
  [v4(255, 255, 255, 255), 32, 'broadcast'],
  [v4(240, 0, 0, 0), 4, 'reserved'],
];

function classifyV4(b: Uint8Array, offset = 0): AddressKind | null {
  const addr = v4(b[offset], b[offset + 1], b[offset + 2], b[offset + 3]);
  if (V4_METADATA.has(addr)) return 'cloud_metadata';
  for (const [base, bits, kind] of V4_RANGES) if (inV4(addr, base, bits)) return kind;
  return null;
}

function startsWith(b: Uint8Array, prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const bit = 7 - (i & 7);
    if (((b[byte] >> bit) & 1) !== ((prefix[byte] ?? 0) >> bit & 1)) return false;
  }
  return true;
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

const V6_METADATA = [
  parseIpv6('fd00:ec2::254')!, // AWS instance metadata over IPv6
  parseIpv6('fd20:ce::254')!,  // GCP metadata over IPv6
];

function classifyV6(b: Uint8Array): AddressKind | null {
  for (const m of V6_METADATA) if (m.every((x, i) => x === b[i])) return 'cloud_metadata';
  if (allZero(b, 0, 10)) {
    const w5 = (b[10] << 8) | b[11];
    if (w5 === 0xffff) return classifyV4(b, 12);                 // ::ffff:a.b.c.d  IPv4-mapped
    if (w5 === 0 && allZero(b, 12, 15)) {
      if (b[15] === 0) return 'unspecified';                     // ::
      if (b[15] === 1) return 'loopback';                        // ::1
    }
    if (w5 === 0) return classifyV4(b, 12) ?? 'reserved';        // ::a.b.c.d  IPv4-compatible (deprecated)
  }
  // ::ffff:0:a.b.c.d  IPv4-translated (SIIT)
  if (allZero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return classifyV4(b, 12) ?? 'reserved';
  // 64:ff9b::/96  NAT64 well-known prefix: the IPv4 address decides
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b], 32) && allZero(b, 4, 12)) return classifyV4(b, 12);
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48)) return 'private';       // 64:ff9b:1::/48 local-use NAT64
  if (startsWith(b, [0x01, 0x00, 0, 0, 0, 0, 0, 0], 64)) return 'reserved';            // 100::/64 discard-only
  if (startsWith(b, [0x20, 0x02], 16)) return classifyV4(b, 2);                        // 2002::/16 6to4
  if (startsWith(b, [0x20, 0x01, 0x0d, 0xb8], 32)) return 'documentation';             // 2001:db8::/32
  if (startsWith(b, [0x3f, 0xff], 20)) return 'documentation';                         // 3fff::/20
  if (startsWith(b, [0x20, 0x01, 0x00, 0x00], 32)) return 'reserved';                  // 2001::/32 Teredo (tunnels to embedded IPv4)
  if (startsWith(b, [0x20, 0x01, 0x00, 0x02, 0x00, 0x00], 48)) return 'benchmarking';  // 2001:2::/48
  if (startsWith(b, [0x20, 0x01, 0x00, 0x10], 28)) return 'reserved';                  // 2001:10::/28 ORCHID
  if (startsWith(b, [0x20, 0x01, 0x00, 0x20], 28)) return 'reserved';                  // 2001:20::/28 ORCHIDv2
  if (startsWith(b, [0xfe, 0x80], 10)) return 'link_local';                            // fe80::/10
  if (startsWith(b, [0xfe, 0xc0], 10)) return 'private';                               // fec0::/10 site-local (deprecated)
  if (startsWith(b, [0xfc], 7)) return 'unique_local';                                 // fc00::/7
  if (startsWith(b, [0xff], 8)) return 'multicast';                                    // ff00::/8
  if (!startsWith(b, [0x20], 3)) return 'reserved';                                    // not global unicast 2000::/3
  return null;
}

/**
 * Null for a public unicast address; otherwise the kind of special-purpose range it is in. Accepts IPv4 dotted
 * decimal and IPv6 (with or without brackets, with an optional zone id). Not an IP literal → 'invalid'.
 */
export function classifyAddress(ip: string): AddressKind | null {
  const p = parseIp(ip);
  if (!p) return 'invalid';
  return p.family === 4 ? classifyV4(p.bytes) : classifyV6(p.bytes);
}

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  bits: number;
  text: string;
}

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128). Throws on a malformed range. */
export function parseCidr(text: string): Cidr {
  const slash = text.lastIndexOf('/');
  const addrText = slash >= 0 ? text.slice(0, slash) : text;
  const p = parseIp(addrText);
  if (!p) throw new Error(`not an IP range: ${JSON.stringify(text)}`);
  const maxBits = p.family === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > maxBits) throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
    bits = Number(b);
  }
  return { family: p.family, bytes: p.bytes, bits, text };
}

function inCidr(p: ParsedIp, c: Cidr): boolean {
  if (p.family !== c.family) return false;
  return startsWith(p.bytes, Array.from(c.bytes), c.bits);
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else the address itself. */
function unmapped(p: ParsedIp): ParsedIp {
  if (p.family === 6 && allZero(p.bytes, 0, 10) && p.bytes[10] === 0xff && p.bytes[11] === 0xff) {
    return { family: 4, bytes: p.bytes.slice(12) };
  }
  return p;
}

/** The address policy of a fetcher: which resolved or literal addresses may be connected to. */
export class AddressGuard {
  private readonly allow: Cidr[];
  private readonly deny: Cidr[];

  constructor(allowCidrs: readonly string[] = [], denyCidrs: readonly string[] = []) {
    this.allow = allowCidrs.map(parseCidr);
    this.deny = denyCidrs.map(parseCidr);
  }

  /** Null when the address may be connected to; otherwise why not (its kind, or 'denied' for a `denyCidrs` hit). */
  check(ip: string): AddressKind | 'denied' | null {
    const p = parseIp(ip);
    if (!p) return 'invalid';
    const forms = [p, unmapped(p)];
    if (this.allow.some((c) => forms.some((f) => inCidr(f, c)))) return null;
    if (this.deny.some((c) => forms.some((f) => inCidr(f, c)))) return 'denied';
    return p.family === 4 ? classifyV4(p.bytes) : classifyV6(p.bytes);
  }
}
