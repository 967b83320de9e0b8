import crypto from 'node:crypto';

/**
 * Serves small crypto.randomFillSync calls from a pool refilled 4 KiB at a time.
 *
 * ssh2 fills the random padding of every packet it sends with its own
 * randomFillSync call (4 to 19 bytes with AES-GCM). In Node 20 each call
 * builds a crypto job object and runs a locked OpenSSL DRBG round; measured
 * on a fresh mount doing random 4 KiB reads, that is about 10 % of the
 * daemon's CPU per request. The bytes still come from the same CSPRNG, each
 * handed out once, only drawn up to 4 KiB ahead.
 *
 * ssh2 takes the function from node:crypto when it loads, so this must run
 * first: remote/ssh2.ts imports it before ssh2, and the rest of tmount gets
 * ssh2 from there. Node's own randomBytes/randomUUID do not go through the
 * exported function and are unaffected.
 */
const POOL_BYTES = 4096;
/** Larger fills (keys, nonces of bulk data) go straight to the CSPRNG. */
const POOLED_UP_TO = 64;

const fillFromCsprng = crypto.randomFillSync;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;
let served = 0;

function pooledRandomFillSync<T extends NodeJS.ArrayBufferView>(target: T, offset?: number, size?: number): T {
  const bytes = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  const start = offset ?? 0;
  const length = size ?? bytes.length - start;
  if (length > POOLED_UP_TO || !Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > bytes.length) {
    // Anything unusual gets the original, with its own argument checks and errors.
    return fillFromCsprng(target, offset, size);
  }
  if (used + length > POOL_BYTES) {
    fillFromCsprng(pool);
    used = 0;
  }
  bytes.set(pool.subarray(used, used + length), start);
  // Handed-out bytes are wiped so that nothing in the pool is ever served twice or read later.
  pool.fill(0, used, used + length);
  used += length;
  served += length;
  return target;
}

if (crypto.randomFillSync !== pooledRandomFillSync) crypto.randomFillSync = pooledRandomFillSync;

export { pooledRandomFillSync };

/** Bytes handed out from the pool so far: shows that ssh2 draws its padding here. */
export function pooledBytesServed(): number {
  return served;
}
