// The only place tmount loads ssh2's code: the padding pool must be in place
// before ssh2 reads crypto.randomFillSync at load time (see padding-random.ts).
// Type-only imports may still name 'ssh2' directly. ssh2 is CommonJS: Node's
// ESM loader sees only its default export, not named ones.
import './padding-random.js';
import ssh2 from 'ssh2';

export default ssh2;
