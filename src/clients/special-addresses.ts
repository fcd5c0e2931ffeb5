/**
 * Which IP addresses an outgoing fetch on a client's behalf must never reach: loopback,
 * private, link-local, unique-local, carrier-grade NAT, multicast, documentation and other
 * special-use ranges — IPv4 and IPv6, including IPv6 forms that embed an IPv4 address
 * (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`: judged by the IPv4 address they carry).
 *
 * IPv6 is allowed only where public hosts live: global unicast (`2000::/3`) and the NAT64
 * well-known prefix with a public IPv4 address. Everything else is refused, named where it has
 * a name: IPv4-mapped (`::ffff:0:0/96`) and IPv4-translated (`::ffff:0:0:0/96`) addresses, the
 * local-use NAT64 prefix (`64:ff9b:1::/48`), and whatever IANA has not allocated.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const RANGES: Record<string, [string, number, 'ipv4' | 'ipv6'][]> = {
  unspecified: [
    ['0.0.0.0', 8, 'ipv4'],
    ['::', 128, 'ipv6'],
  ],
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  private: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
  ],
  'carrier-grade NAT': [['100.64.0.0', 10, 'ipv4']],
  'link-local': [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  'unique-local': [
    ['fc00::', 7, 'ipv6'],
    ['fec0::', 10, 'ipv6'],
  ],
  multicast: [
    ['224.0.0.0', 4, 'ipv4'],
    ['ff00::', 8, 'ipv6'],
  ],
  reserved: [
    ['240.0.0.0', 4, 'ipv4'],
    ['192.0.0.0', 24, 'ipv4'],
    ['198.18.0.0', 15, 'ipv4'],
    ['100::', 64, 'ipv6'],
    ['2001::', 23, 'ipv6'],
    ['::', 96, 'ipv6'],
    ['64:ff9b:1::', 48, 'ipv6'],
  ],
  documentation: [
    ['192.0.2.0', 24, 'ipv4'],
    ['198.51.100.0', 24, 'ipv4'],
    ['203.0.113.0', 24, 'ipv4'],
    ['2001:db8::', 32, 'ipv6'],
  ],
};

const LISTS = Object.entries(RANGES).map(([name, ranges]) => {
  const list = new BlockList();
  for (const [network, prefix, type] of ranges) list.addSubnet(network, prefix, type);
  return { name, list };
});

/** Where public IPv6 hosts live: global unicast, and NAT64's well-known prefix (judged by its IPv4 address). */
const PUBLIC_IPV6 = new BlockList();
PUBLIC_IPV6.addSubnet('2000::', 3, 'ipv6');
PUBLIC_IPV6.addSubnet('64:ff9b::', 96, 'ipv6');

/**
 * The kind of special-use range `address` (an IP literal, IPv6 without brackets) belongs to,
 * or undefined for an ordinary public address. A string that is no IP address at all is
 * reported as `not an IP address`, so callers fail closed.
 */
export function specialAddressKind(address: string): string | undefined {
  if (isIPv4(address)) return match(address, 'ipv4');
  if (!isIPv6(address)) return 'not an IP address';
  // an embedded IPv4 address that is special names the kind (`::ffff:127.0.0.1` is loopback)
  const embedded = embeddedIPv4(address);
  const embeddedKind = embedded === undefined ? undefined : specialAddressKind(embedded.ipv4);
  if (embeddedKind) return embeddedKind;
  // (not a BlockList rule: node's BlockList matches every IPv4 address against ::ffff:0:0/96)
  if (embedded?.form === 'mapped') return 'IPv4-mapped';
  const kind = match(address, 'ipv6');
  if (kind) return kind;
  return PUBLIC_IPV6.check(address, 'ipv6') ? undefined : 'not a global unicast address';
}


function match(address: string, type: 'ipv4' | 'ipv6'): string | undefined {
  return LISTS.find(({ list }) => list.check(address, type))?.name;
}

/** The IPv4 address carried by an IPv4-mapped or -translated, NAT64 or 6to4 IPv6 address, and which form it is. */
function embeddedIPv4(address: string): { ipv4: string; form: 'mapped' | 'nat64' | '6to4' } | undefined {
  const words = ipv6Words(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zeros(0, 5) && words[5] === 0xffff) return { ipv4: v4(words[6]!, words[7]!), form: 'mapped' }; // ::ffff:a.b.c.d
  if (zeros(0, 4) && words[4] === 0xffff && words[5] === 0) return { ipv4: v4(words[6]!, words[7]!), form: 'mapped' }; // ::ffff:0:a.b.c.d (translated)
  if (words[0] === 0x64 && words[1] === 0xff9b && zeros(2, 6)) return { ipv4: v4(words[6]!, words[7]!), form: 'nat64' }; // 64:ff9b::/96
  if (words[0] === 0x2002) return { ipv4: v4(words[1]!, words[2]!), form: '6to4' }; // 2002:AABB:CCDD::/48
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (dotted IPv4 tail and `::` expanded). */
function ipv6Words(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const words = [...left, ...Array<string>(fill).fill('0'), ...right].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}
