import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { SecretsError } from '../core/errors.js';

/**
 * CIDR binding of tokens and AppRole secret IDs (Vault's `token_bound_cidrs`,
 * `secret_id_bound_cidrs`): a list of IPv4 or IPv6 blocks (RFC 4632 §3.1 notation, `a.b.c.d/n`,
 * or a bare address for a single host), and whether a client address lies in one of them.
 * Matching is Node's own `net.BlockList`; this module only validates the notation and puts an
 * IPv4 client that reached a dual-stack socket (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) back in
 * IPv4, where its blocks are written. An IPv4 client is matched against IPv4 blocks only and an
 * IPv6 client against IPv6 blocks only, as in Vault: a BlockList alone would match IPv4 clients
 * against IPv6 blocks covering `::ffff:0:0/96`, so `::/0` would admit every IPv4 address.
 */

/** At most this many blocks per list, each at most {@link MAX_CIDR_CHARS} characters. */
export const MAX_CIDRS = 64;
const MAX_CIDR_CHARS = 64;

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

interface Block {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

function parseBlock(field: string, text: string): Block {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  // A zone id (`fe80::1%eth0`) names an interface of this host, which matching cannot honour.
  if (address.includes('%')) throw new SecretsError('secrets.invalid_request', `${field}: "${text}" has a zone id; write the block without it`);
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!family) throw new SecretsError('secrets.invalid_request', `${field}: "${text}" is not an IP address or CIDR block`);
  const max = family === 'ipv4' ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new SecretsError('secrets.invalid_request', `${field}: "${text}" has a prefix length outside 0–${max}`);
  return { address, prefix, family };
}

/**
 * A bound-CIDR field of a request: a JSON array of strings or one comma-separated string, as
 * Vault accepts both. Returns the blocks trimmed and de-duplicated, [] for an empty list (no
 * binding), undefined when the field is absent. Throws `secrets.invalid_request` naming the
 * first entry that is not an address or block.
 */
export function cidrListField(body: Readonly<Record<string, unknown>>, field: string): string[] | undefined {
  const raw = body[field];
  if (raw === undefined || raw === null) return undefined;
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) && raw.every((v) => typeof v === 'string') ? (raw as string[]) : undefined;
  if (!items) throw new SecretsError('secrets.invalid_request', `${field} must be a list of CIDR blocks or a comma-separated string`);
  const blocks = [...new Set(items.map((s) => s.trim()).filter((s) => s !== ''))];
  if (blocks.length > MAX_CIDRS) throw new SecretsError('secrets.invalid_request', `${field}: at most ${MAX_CIDRS} blocks`);
  for (const b of blocks) {
    if (b.length > MAX_CIDR_CHARS) throw new SecretsError('secrets.invalid_request', `${field}: a block is at most ${MAX_CIDR_CHARS} characters`);
    parseBlock(field, b);
  }
  return blocks;
}

/** A list's blocks, one BlockList per family. */
interface Families {
  readonly ipv4: BlockList;
  readonly ipv6: BlockList;
}

const lists = new Map<string, Families>();

function blockListsOf(cidrs: readonly string[]): Families {
  const key = cidrs.join(',');
  let list = lists.get(key);
  if (!list) {
    list = { ipv4: new BlockList(), ipv6: new BlockList() };
    for (const c of cidrs) {
      const b = parseBlock('bound CIDR', c);
      list[b.family].addSubnet(b.address, b.prefix, b.family);
    }
    // Lists come from stored tokens and roles; a bounded cache keeps a long-lived server from
    // holding every list it ever saw.
    if (lists.size >= 1024) lists.clear();
    lists.set(key, list);
  }
  return list;
}

/**
 * Whether `address` (the client's, as the socket reports it) lies in one of `cidrs`. An empty
 * list binds nothing and allows every address; an address that is not an IP address is refused.
 */
export function addressAllowed(cidrs: readonly string[], address: string | undefined): boolean {
  if (cidrs.length === 0) return true;
  if (address === undefined) return false;
  const mapped = MAPPED_IPV4.exec(address)?.[1];
  const client = mapped && isIPv4(mapped) ? mapped : address;
  const family = isIPv4(client) ? 'ipv4' : isIPv6(client) ? 'ipv6' : undefined;
  return family !== undefined && blockListsOf(cidrs)[family].check(client, family);
}
