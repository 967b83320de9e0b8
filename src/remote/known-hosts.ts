import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): parsing
 * and the lookup ssh does before trusting a host. Pure: no file access here.
 */

export type HostKeyStatus = 'match' | 'unknown' | 'changed' | 'revoked';

export type KnownHostNames =
  | { kind: 'patterns'; patterns: string[] }
  /** `|1|salt|hmac`: HMAC-SHA1 of the host name, keyed by the salt. */
  | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  file: string;
  /** 1-based, as `ssh-keygen -F` and ssh's warnings count. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  names: KnownHostNames;
  keyType: string;
  keyBlob: Buffer;
}

export interface HostKeyLookup {
  status: HostKeyStatus;
  /** The line that decided: the matching, revoked or conflicting entry. */
  entry?: KnownHostEntry;
}

const HASH_MAGIC = '|1|';
const SHA1_LENGTH = 20;

/** Reads the first SSH wire string of a key blob: its type name. */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) throw new Error(`host key blob of ${blob.length} bytes is too short to hold a key type`);
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) {
    throw new Error(`host key blob of ${blob.length} bytes has an invalid key type length ${length}`);
  }
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** The short name ssh prints before a fingerprint ("ED25519 key fingerprint is ..."). */
export function keyTypeLabel(keyType: string): string {
  const cert = keyType.includes('-cert-v01@openssh.com') ? '-CERT' : '';
  if (keyType.startsWith('sk-ssh-ed25519')) return `ED25519-SK${cert}`;
  if (keyType.startsWith('sk-ecdsa-')) return `ECDSA-SK${cert}`;
  if (keyType.startsWith('ssh-ed25519')) return `ED25519${cert}`;
  if (keyType.startsWith('ecdsa-sha2-')) return `ECDSA${cert}`;
  if (keyType.startsWith('ssh-rsa') || keyType.startsWith('rsa-sha2-')) return `RSA${cert}`;
  if (keyType.startsWith('ssh-dss')) return `DSA${cert}`;
  return keyType.toUpperCase();
}

/** `SHA256:` and the unpadded base64 digest, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The name ssh stores and looks up: the bare host on port 22, `[host]:port`
 * otherwise. Lowercased, because ssh lowercases before matching.
 */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 || port === 0 ? lower : `[${lower}]:${port}`;
}

function decodeBase64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function parseNames(field: string): KnownHostNames | undefined {
  if (field.startsWith(HASH_MAGIC)) {
    const [salt64, hash64, ...rest] = field.slice(HASH_MAGIC.length).split('|');
    if (salt64 === undefined || hash64 === undefined || rest.length > 0) return undefined;
    const salt = decodeBase64Strict(salt64);
    const hash = decodeBase64Strict(hash64);
    if (!salt || !hash || hash.length !== SHA1_LENGTH || salt.length === 0) return undefined;
    return { kind: 'hashed', salt, hash };
  }
  const patterns = field.split(',').filter((p) => p !== '');
  return patterns.length === 0 ? undefined : { kind: 'patterns', patterns };
}

/**
 * Parses a known_hosts file. Lines ssh would skip (comments, blanks, unknown
 * markers, RSA1 keys, broken base64, a blob whose type differs from the
 * stated one) are skipped here too, so a bad line never hides a good one.
 */
export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      const word = fields.shift()!;
      if (word === '@revoked') marker = 'revoked';
      else if (word === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [namesField, keyType, key64] = fields;
    if (namesField === undefined || keyType === undefined || key64 === undefined) continue;
    const names = parseNames(namesField);
    const keyBlob = decodeBase64Strict(key64);
    if (!names || !keyBlob) continue;
    try {
      if (keyTypeOfBlob(keyBlob) !== keyType) continue;
    } catch {
      continue;
    }
    const entry: KnownHostEntry = { file, line: i + 1, names, keyType, keyBlob };
    if (marker) entry.marker = marker;
    entries.push(entry);
  }
  return entries;
}

/** ssh's match_pattern(): `*` and `?` wildcards over the whole string. */
function globMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export function hashHostName(name: string, salt: Buffer): Buffer {
  return createHmac('sha1', salt).update(name).digest();
}

/**
 * Whether an entry names `name` (as built by knownHostsName). A matching
 * negated pattern (`!host`) rules the line out even when another pattern
 * matches, as in ssh's match_hostname().
 */
export function entryMatchesName(names: KnownHostNames, name: string): boolean {
  if (names.kind === 'hashed') {
    const hash = hashHostName(name, names.salt);
    return hash.length === names.hash.length && timingSafeEqual(hash, names.hash);
  }
  let positive = false;
  for (const raw of names.patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (!globMatch(name, pattern)) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

/**
 * The full answer of a host-key lookup, with the line that decided it.
 * Order as in ssh: a revoked key is refused whatever else the files say; any
 * line with exactly this key accepts it; a line with another key of the same
 * type means the key CHANGED. Keys of other types only leave it unknown (ssh
 * asks in that case too). @cert-authority lines never vouch for a plain key.
 */
export function lookupHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
): HostKeyLookup {
  const name = knownHostsName(host, port);
  const forHost = entries.filter((e) => entryMatchesName(e.names, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const match = plain.find((e) => e.keyBlob.equals(keyBlob));
  if (match) return { status: 'match', entry: match };
  const changed = plain.find((e) => e.keyType === keyType);
  if (changed) return { status: 'changed', entry: changed };
  return { status: 'unknown' };
}

export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
): HostKeyStatus {
  return lookupHostKey(entries, host, port, keyType, keyBlob).status;
}

/**
 * Key types already trusted for this host, in file order. ssh offers these
 * host-key algorithms first so that a host known by its RSA key is not
 * reported as unknown just because it also has an ED25519 key.
 */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const types: string[] = [];
  for (const e of entries) {
    if (e.marker === undefined && !types.includes(e.keyType) && entryMatchesName(e.names, name)) types.push(e.keyType);
  }
  return types;
}

/**
 * One known_hosts line (without newline) as ssh would append it. With `hash`
 * the name is stored as `|1|salt|hmac`, as with `HashKnownHosts yes`.
 */
export function formatKnownHostsLine(
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
  options: { hash?: boolean; salt?: Buffer } = {},
): string {
  const name = knownHostsName(host, port);
  let names = name;
  if (options.hash) {
    const salt = options.salt ?? randomBytes(SHA1_LENGTH);
    names = `${HASH_MAGIC}${salt.toString('base64')}|${hashHostName(name, salt).toString('base64')}`;
  }
  return `${names} ${keyType} ${keyBlob.toString('base64')}`;
}
