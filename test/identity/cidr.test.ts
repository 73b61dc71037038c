import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CIDRS, addressAllowed, cidrListField } from '../../src/identity/cidr.js';

/**
 * CIDR binding (src/identity/cidr.ts) against a reference written here from RFC 4632 §3.1: an
 * address is in a block when their first `prefix` bits are equal.
 */

const ipv4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const ipv6 = (n: bigint): string => Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
const inBlock4 = (addr: number, net: number, prefix: number): boolean => prefix === 0 || addr >>> (32 - prefix) === net >>> (32 - prefix);
const inBlock6 = (addr: bigint, net: bigint, prefix: number): boolean => prefix === 0 || addr >> BigInt(128 - prefix) === net >> BigInt(128 - prefix);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u128 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });

describe('addressAllowed', () => {
  it('agrees with prefix comparison for IPv4, a client near the block included', () => {
    fc.assert(
      fc.property(u32, u32, fc.integer({ min: 0, max: 32 }), fc.integer({ min: -2, max: 2 }), (net, far, prefix, delta) => {
        // Half the clients are the block's own address moved by a little, so both answers occur.
        for (const addr of [far, (net + delta) >>> 0]) {
          expect(addressAllowed([`${ipv4(net)}/${prefix}`], ipv4(addr))).toBe(inBlock4(addr, net, prefix));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with prefix comparison for IPv6', () => {
    fc.assert(
      fc.property(u128, u128, fc.integer({ min: 0, max: 128 }), (net, far, prefix) => {
        for (const addr of [far, net ^ 1n]) expect(addressAllowed([`${ipv6(net)}/${prefix}`], ipv6(addr))).toBe(inBlock6(addr, net, prefix));
      }),
      { numRuns: 300 },
    );
  });

  it('allows an address in any block of the list, and a bare address as its single host', () => {
    const list = ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'];
    expect(addressAllowed(list, '10.200.3.4')).toBe(true);
    expect(addressAllowed(list, '192.168.1.7')).toBe(true);
    expect(addressAllowed(list, '192.168.1.8')).toBe(false);
    expect(addressAllowed(list, '2001:db8:ffff::1')).toBe(true);
    expect(addressAllowed(list, '2001:db9::1')).toBe(false);
    expect(addressAllowed(list, '127.0.0.1')).toBe(false);
  });

  it('puts an IPv4 client of a dual-stack socket back in IPv4', () => {
    expect(addressAllowed(['127.0.0.0/8'], '::ffff:127.0.0.1')).toBe(true);
    expect(addressAllowed(['10.0.0.0/8'], '::ffff:127.0.0.1')).toBe(false);
  });

  it('matches an IPv4 client against IPv4 blocks only, and an IPv6 client against IPv6 blocks only', () => {
    for (const v6 of ['::/0', '::/64', '::ffff:0:0/96']) {
      expect(addressAllowed([v6], '8.8.8.8')).toBe(false);
      expect(addressAllowed([v6], '::ffff:8.8.8.8')).toBe(false);
    }
    expect(addressAllowed(['0.0.0.0/0'], '::1')).toBe(false);
    expect(addressAllowed(['0.0.0.0/0'], '2001:db8::1')).toBe(false);
    expect(addressAllowed(['0.0.0.0/0', '::/0'], '2001:db8::1')).toBe(true);
    expect(addressAllowed(['0.0.0.0/0', '::/0'], '8.8.8.8')).toBe(true);
  });

  it('allows everything with an empty list and refuses an unknown or malformed client address', () => {
    expect(addressAllowed([], '203.0.113.9')).toBe(true);
    expect(addressAllowed(['0.0.0.0/0'], undefined)).toBe(false);
    expect(addressAllowed(['0.0.0.0/0'], 'localhost')).toBe(false);
  });
});

describe('cidrListField', () => {
  it('reads a JSON array or a comma-separated string, trimmed and without duplicates', () => {
    expect(cidrListField({ f: ['10.0.0.0/8', ' 127.0.0.1 ', '10.0.0.0/8'] }, 'f')).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(cidrListField({ f: '10.0.0.0/8, ::1/128' }, 'f')).toEqual(['10.0.0.0/8', '::1/128']);
    expect(cidrListField({ f: '' }, 'f')).toEqual([]);
    expect(cidrListField({}, 'f')).toBeUndefined();
  });

  it('refuses what is not an address or block, naming the field and the entry', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'example.com', '::1/129', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/', '1.2.3.4/08x', 'fe80::1%eth0/64', 'fe80::1%eth0']) {
      expect(() => cidrListField({ token_bound_cidrs: [bad] }, 'token_bound_cidrs')).toThrow(
        expect.objectContaining({ code: 'secrets.invalid_request', message: expect.stringContaining(`token_bound_cidrs: "${bad}"`) }),
      );
    }
    const refused = expect.objectContaining({ code: 'secrets.invalid_request' });
    for (const bad of [42, [1], { a: '10.0.0.0/8' }]) expect(() => cidrListField({ f: bad }, 'f')).toThrow(refused);
    const many = Array.from({ length: MAX_CIDRS + 1 }, (_, i) => `10.0.${i}.0/24`);
    expect(() => cidrListField({ f: many }, 'f')).toThrow(refused);
  });
});
