import { describe, expect, it } from 'vitest';
import { formatIP, parseIP } from '../../../../shared/net/ip.js';
import { IPAllocator } from '../../../../plugins/host-local/allocator.js';
import { MemoryStore } from '../../../../plugins/host-local/memory-store.js';
import { rangeSet } from './helpers.js';

function allocator(subnets: string[], taken: string[] = [], lastIP?: string): { alloc: IPAllocator; store: MemoryStore } {
  const store = new MemoryStore(Object.fromEntries(taken.map((ip) => [ip, 'someone\r\neth0'])));
  if (lastIP) store.lastReserved.set('0', parseIP(lastIP));
  return { alloc: new IPAllocator(rangeSet(...subnets), store, 0), store };
}

describe('IPAllocator.get round-robin (allocator_test.go)', () => {
  it.each([
    { name: 'empty /29', subnets: ['10.0.0.0/29'], taken: [], last: undefined, want: '10.0.0.2/29' },
    { name: 'empty v6 /64', subnets: ['2001:db8:1::/64'], taken: [], last: undefined, want: '2001:db8:1::2/64' },
    { name: 'empty /30', subnets: ['10.0.0.0/30'], taken: [], last: undefined, want: '10.0.0.2/30' },
    { name: 'partly used', subnets: ['10.0.0.0/29'], taken: ['10.0.0.2'], last: undefined, want: '10.0.0.3/29' },
    { name: 'after lastIP', subnets: ['10.0.0.0/29'], taken: [], last: '10.0.0.5', want: '10.0.0.6/29' },
    { name: 'skip taken after lastIP', subnets: ['10.0.0.0/29'], taken: ['10.0.0.4', '10.0.0.5'], last: '10.0.0.3', want: '10.0.0.6/29' },
    { name: 'wrap around', subnets: ['10.0.0.0/29'], taken: ['10.0.0.6'], last: '10.0.0.5', want: '10.0.0.2/29' },
    { name: 'lastIP out of range', subnets: ['10.0.0.0/29'], taken: [], last: '10.0.0.128', want: '10.0.0.2/29' },
    {
      name: 'full except lastIP',
      subnets: ['10.0.0.0/29'],
      taken: ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'],
      last: '10.0.0.6',
      want: '10.0.0.6/29',
    },
    { name: 'two /30 fresh', subnets: ['10.0.0.0/30', '10.0.1.0/30'], taken: [], last: undefined, want: '10.0.0.2/30' },
    { name: 'two /30 next range', subnets: ['10.0.0.0/30', '10.0.1.0/30'], taken: [], last: '10.0.0.2', want: '10.0.1.2/30' },
    { name: 'three /30 wrap', subnets: ['10.0.0.0/30', '10.0.1.0/30', '10.0.2.0/30'], taken: [], last: '10.0.2.2', want: '10.0.0.2/30' },
  ])('$name → $want', ({ subnets, taken, last, want }) => {
    const { alloc, store } = allocator(subnets, taken, last);
    const got = alloc.get('ID', 'eth0');
    expect(got.address).toBe(want);
    const ip = want.split('/')[0]!;
    expect(store.ipMap.get(ip)).toBe('ID\r\neth0');
    expect(formatIP(store.lastReserved.get('0')!)).toBe(ip);
    expect(store.locked).toBe(false);
    expect(store.lockCount).toBe(1);
  });

  it('returns the gateway of the range', () => {
    const { alloc } = allocator(['10.0.0.0/24', '10.0.1.0/24']);
    expect(alloc.get('a', 'eth0')).toEqual({ address: '10.0.0.2/24', gateway: '10.0.0.1' });
  });

  it('never hands out the broadcast address, then reports exhaustion', () => {
    const { alloc } = allocator(['192.168.1.0/29']);
    const got = [1, 2, 3, 4, 5].map((i) => alloc.get(`c${i}`, 'eth0').address);
    expect(got).toEqual(['192.168.1.2/29', '192.168.1.3/29', '192.168.1.4/29', '192.168.1.5/29', '192.168.1.6/29']);
    expect(() => alloc.get('c6', 'eth0')).toThrow(new Error('no IP addresses available in range set: 192.168.1.1-192.168.1.6'));
  });

  it('does not reuse a released IP until the range wraps', () => {
    const { alloc } = allocator(['192.168.1.0/29']);
    expect(alloc.get('a', 'eth0').address).toBe('192.168.1.2/29');
    alloc.release('a', 'eth0');
    expect(alloc.get('b', 'eth0').address).toBe('192.168.1.3/29');
  });

  it('refuses a second allocation for the same attachment in the same set', () => {
    const { alloc } = allocator(['10.1.2.0/24']);
    alloc.get('dup', 'eth0');
    expect(() => alloc.get('dup', 'eth0')).toThrow('10.1.2.2 has been allocated to dup, duplicate allocation is not allowed');
    expect(alloc.get('dup', 'eth1').address).toBe('10.1.2.3/24');
  });
});

describe('IPAllocator.get with a requested IP', () => {
  it('reserves it', () => {
    const { alloc, store } = allocator(['192.168.1.0/29']);
    expect(alloc.get('a', 'eth0', parseIP('192.168.1.5')).address).toBe('192.168.1.5/29');
    expect(formatIP(store.lastReserved.get('0')!)).toBe('192.168.1.5');
  });

  it.each([
    ['192.168.1.5', ['192.168.1.5'], 'requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6'],
    ['192.168.1.1', [], "requested ip 192.168.1.1 is subnet's gateway"],
    ['192.168.1.7', [], '192.168.1.7 not in range set 192.168.1.1-192.168.1.6'],
    ['10.0.0.1', [], '10.0.0.1 not in range set 192.168.1.1-192.168.1.6'],
  ])('%s (taken %j) → %s', (ip, taken, msg) => {
    const { alloc } = allocator(['192.168.1.0/29'], taken);
    expect(() => alloc.get('a', 'eth0', parseIP(ip))).toThrow(new Error(msg));
  });
});

describe('RangeIter', () => {
  const walk = (last?: string): string[] => {
    const { alloc } = allocator(['192.168.1.0/29'], [], last);
    const it = alloc.getIter();
    const out: string[] = [];
    for (let a = it.next(); a !== undefined; a = it.next()) out.push(formatIP(a.ip));
    return out;
  };
  it('walks a fresh set from rangeStart, skipping the gateway', () => {
    expect(walk()).toEqual(['192.168.1.2', '192.168.1.3', '192.168.1.4', '192.168.1.5', '192.168.1.6']);
  });
  it('starts after the last reserved IP and tries it last', () => {
    expect(walk('192.168.1.3')).toEqual(['192.168.1.4', '192.168.1.5', '192.168.1.6', '192.168.1.2', '192.168.1.3']);
    expect(walk('192.168.1.6')).toEqual(['192.168.1.2', '192.168.1.3', '192.168.1.4', '192.168.1.5', '192.168.1.6']);
  });
  it('logs an unreadable last reserved IP and starts from the beginning', () => {
    const logs: string[] = [];
    const store = new MemoryStore();
    store.lastReservedIP = () => {
      throw new Error('permission denied');
    };
    const alloc = new IPAllocator(rangeSet('10.0.0.0/29'), store, 0, (m) => logs.push(m));
    expect(alloc.get('a', 'eth0').address).toBe('10.0.0.2/29');
    expect(logs).toEqual(['Error retrieving last reserved ip: permission denied']);
  });
});
