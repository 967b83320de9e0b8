import { readFile } from 'node:fs/promises';
import type {
  AnyAuthMethod,
  BaseAgent as BaseAgentType,
  IdentityCallback,
  KeyboardInteractiveCallback,
  ParsedKey,
  Prompt,
  SignCallback,
  SigningRequestOptions,
} from 'ssh2';
import ssh2 from './ssh2.js';
import { describeCause } from '../errors.js';

const { BaseAgent, createAgent, utils } = ssh2;

/** Questions for the person at the terminal. Absent when there is no terminal. */
export interface Prompter {
  /** A yes/no question (host-key confirmation); resolves true only for yes. */
  askYesNo(question: string): Promise<boolean>;
  /** Reads one line with echo off (passphrases, passwords, one-time codes). */
  askSecret(prompt: string): Promise<string>;
}

export interface IdentitySource {
  path: string;
  /** `default` files (~/.ssh/id_*) are skipped silently when missing. */
  origin: 'explicit' | 'config' | 'default';
}

/** What authenticated once. reconnect() uses exactly this, without asking anyone. */
export type ProvenCredential =
  | { method: 'none' }
  | { method: 'agent'; keyBlob: Buffer }
  | { method: 'publickey'; path: string; key: ParsedKey }
  | { method: 'password'; password: string }
  | { method: 'keyboard-interactive'; answers: Map<string, string> };

/**
 * Secrets typed once, held in memory only for the life of the process so a
 * reconnect never has to ask again.
 */
export class CredentialCache {
  readonly passphrases = new Map<string, string>();
  proven: ProvenCredential | undefined;
}

export interface AuthPlan {
  username: string;
  /** Shown in messages: user@`hostLabel`. */
  hostLabel: string;
  agentSocket: string | undefined;
  identities: IdentitySource[];
  /** IdentitiesOnly: use only agent keys that belong to the identity files. */
  identitiesOnly: boolean;
  pubkey: boolean;
  password: boolean;
  kbdInteractive: boolean;
  prompter: Prompter | undefined;
  cache: CredentialCache;
  /** Try only `cache.proven` (reconnects). */
  provenOnly: boolean;
  /** Every wait on the user goes through this, so the caller can stop its handshake clock. */
  whilePrompting<T>(ask: () => Promise<T>): Promise<T>;
}

type NextAuth = (method: AnyAuthMethod | false) => void;
export type AuthHandler = (methodsLeft: string[] | null, partialSuccess: boolean | null, next: NextAuth) => void;

interface Attempt {
  method: AnyAuthMethod;
  prove(): ProvenCredential;
}

const MAX_SECRET_TRIES = 3;

/**
 * Wraps the real agent to count the keys it offered, to order (and with
 * IdentitiesOnly, restrict) them, and to learn which key signed last: after
 * a successful login, that is the key that worked.
 */
class TrackingAgent extends BaseAgent<ParsedKey> {
  offered: Buffer[] = [];
  failure: Error | undefined;
  lastSigned: Buffer | undefined;

  constructor(
    private readonly inner: BaseAgentType,
    private readonly choose: (keys: ParsedKey[]) => ParsedKey[],
  ) {
    super();
  }

  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    this.inner.getIdentities((err, keys) => {
      if (err) {
        this.failure = err;
        cb(err);
        return;
      }
      const parsed: ParsedKey[] = [];
      for (const key of keys ?? []) {
        const result = utils.parseKey(key as Buffer | string | ParsedKey);
        if (!(result instanceof Error)) parsed.push(Array.isArray(result) ? (result[0] as ParsedKey) : result);
      }
      const chosen = this.choose(parsed);
      this.offered = chosen.map((k) => k.getPublicSSH());
      cb(null, chosen);
    });
  }

  sign(pubKey: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    this.lastSigned = pubKey.getPublicSSH();
    if (typeof options === 'function') this.inner.sign(pubKey, data, options);
    else this.inner.sign(pubKey, data, options, cb);
  }
}

function firstKey(result: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  if (Array.isArray(result)) return result[0] ?? new Error('the file holds no key');
  return result;
}

function isEncryptedKeyError(err: Error): boolean {
  return /no passphrase given/i.test(err.message);
}

function isBadPassphraseError(err: Error): boolean {
  return /passphrase/i.test(err.message);
}

/**
 * The public half of an OpenSSH "openssh-key-v1" private key file, which is
 * stored unencrypted even when the private half is, so IdentitiesOnly can
 * match agent keys without asking for a passphrase.
 */
function publicBlobFromOpensshKey(text: string): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return undefined;
  const data = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (data.length < magic.length || !data.subarray(0, magic.length).equals(magic)) return undefined;
  let offset = magic.length;
  const readString = (): Buffer | undefined => {
    if (offset + 4 > data.length) return undefined;
    const length = data.readUInt32BE(offset);
    if (offset + 4 + length > data.length) return undefined;
    const value = data.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value;
  };
  // ciphername, kdfname, kdfoptions, then the key count and the first public key.
  if (!readString() || !readString() || !readString() || offset + 4 > data.length) return undefined;
  offset += 4;
  return readString();
}

interface LoadedIdentity {
  source: IdentitySource;
  data: Buffer | undefined;
  /** Why the file could not be read; undefined when missing or read. */
  readError: string | undefined;
  publicBlob: Buffer | undefined;
}

async function loadIdentity(source: IdentitySource): Promise<LoadedIdentity> {
  let data: Buffer;
  try {
    data = await readFile(source.path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { source, data: undefined, readError: missing ? undefined : describeCause(err), publicBlob: undefined };
  }
  let publicBlob: Buffer | undefined;
  try {
    const pub = firstKey(utils.parseKey(await readFile(`${source.path}.pub`)));
    if (!(pub instanceof Error)) publicBlob = pub.getPublicSSH();
  } catch {
    // No .pub next to the key: derive the public half from the key itself.
  }
  if (!publicBlob) {
    const parsed = firstKey(utils.parseKey(data));
    publicBlob = parsed instanceof Error ? publicBlobFromOpensshKey(data.toString('latin1')) : parsed.getPublicSSH();
  }
  return { source, data, readError: undefined, publicBlob };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Drives ssh2's `authHandler` through the methods in OpenSSH's order:
 * none (to learn what the server allows), the agent, the identity files,
 * keyboard-interactive, then password — the last two only with a prompter.
 * Records what was tried so a refusal can say so in one line.
 */
export class AuthSession {
  readonly tried: string[] = [];
  serverMethods: string[] | undefined;
  /** Set when the user interrupted a prompt; the connection fails with it. */
  aborted: unknown;
  private current: Attempt | undefined;
  private readonly attempts: AsyncGenerator<Attempt, void, undefined>;

  constructor(private readonly plan: AuthPlan) {
    this.attempts = plan.provenOnly ? this.provenAttempts() : this.allAttempts();
  }

  readonly handler: AuthHandler = (methodsLeft, _partial, next) => {
    if (methodsLeft) this.serverMethods = methodsLeft;
    this.attempts.next().then(
      (step) => {
        this.current = step.done ? undefined : step.value;
        next(step.done ? false : step.value.method);
      },
      (err: unknown) => {
        this.aborted = err;
        this.current = undefined;
        next(false);
      },
    );
  };

  /** Called once the server accepted: what worked, for reconnects. */
  proven(): ProvenCredential {
    if (!this.current) return { method: 'none' };
    return this.current.prove();
  }

  /** The ssh-style name of the method that worked. */
  methodName(): string {
    return this.current?.method.type ?? 'none';
  }

  failureMessage(): string {
    const { username, hostLabel } = this.plan;
    const accepts = this.serverMethods?.length ? ` (the server accepts ${this.serverMethods.join(', ')})` : '';
    if (this.plan.provenOnly) {
      const what = this.tried[0] ?? 'the credentials that worked before';
      return `authentication failed for ${username}@${hostLabel} on reconnect${accepts}: ${what}, which worked at the first login, was refused; mount again to authenticate afresh`;
    }
    const tried = this.tried.length ? this.tried.join(', ') : 'no key (no agent, no identity file found)';
    return `authentication failed for ${username}@${hostLabel}${accepts}: tried ${tried}; add your key to the server or pass --identity`;
  }

  private allows(method: string): boolean {
    // Before the first answer we do not know; ssh2 asks with 'none' first.
    return this.serverMethods === undefined || this.serverMethods.includes(method);
  }

  private noneAttempt(): Attempt {
    return { method: { type: 'none', username: this.plan.username }, prove: () => ({ method: 'none' }) };
  }

  private async *provenAttempts(): AsyncGenerator<Attempt, void, undefined> {
    yield this.noneAttempt();
    const proven = this.plan.cache.proven;
    const { username } = this.plan;
    if (!proven || proven.method === 'none') return;
    switch (proven.method) {
      case 'agent': {
        if (!this.plan.agentSocket) {
          this.tried.push('the agent key (no agent socket now)');
          return;
        }
        const agent = new TrackingAgent(createAgent(this.plan.agentSocket), (keys) =>
          keys.filter((k) => k.getPublicSSH().equals(proven.keyBlob)),
        );
        this.tried.push('the agent key');
        yield { method: { type: 'agent', username, agent }, prove: () => proven };
        if (agent.failure) this.tried[0] = `the agent key (agent unreachable: ${agent.failure.message})`;
        else if (agent.offered.length === 0) this.tried[0] = 'the agent key (no longer in the agent)';
        return;
      }
      case 'publickey':
        this.tried.push(`the key ${proven.path}`);
        yield { method: { type: 'publickey', username, key: proven.key }, prove: () => proven };
        return;
      case 'password':
        this.tried.push('the password');
        yield { method: { type: 'password', username, password: proven.password }, prove: () => proven };
        return;
      case 'keyboard-interactive':
        this.tried.push('the keyboard-interactive answers');
        yield {
          method: {
            type: 'keyboard-interactive',
            username,
            prompt: (_name, _instructions, _lang, prompts: Prompt[], finish: KeyboardInteractiveCallback) =>
              finish(prompts.map((p) => proven.answers.get(p.prompt) ?? '')),
          },
          prove: () => proven,
        };
        return;
    }
  }

  private async *allAttempts(): AsyncGenerator<Attempt, void, undefined> {
    const { username, prompter } = this.plan;
    yield this.noneAttempt();

    const identities = await Promise.all(this.plan.identities.map(loadIdentity));
    const triedBlobs: Buffer[] = [];

    if (this.plan.pubkey && this.allows('publickey') && this.plan.agentSocket) {
      const fileBlobs = identities.map((i) => i.publicBlob).filter((b): b is Buffer => b !== undefined);
      const rank = (key: ParsedKey): number => {
        const blob = key.getPublicSSH();
        const index = fileBlobs.findIndex((b) => b.equals(blob));
        return index === -1 ? fileBlobs.length : index;
      };
      // Keys that belong to the identity files go first, in their order, as ssh does.
      const agent = new TrackingAgent(createAgent(this.plan.agentSocket), (keys) => {
        const ordered = keys.map((key, i) => ({ key, i, r: rank(key) })).sort((a, b) => a.r - b.r || a.i - b.i);
        return ordered.filter((o) => !this.plan.identitiesOnly || o.r < fileBlobs.length).map((o) => o.key);
      });
      yield {
        method: { type: 'agent', username, agent },
        prove: () => ({ method: 'agent', keyBlob: agent.lastSigned ?? Buffer.alloc(0) }),
      };
      if (agent.failure) this.tried.push(`agent (unreachable: ${agent.failure.message})`);
      else this.tried.push(`agent (${plural(agent.offered.length, 'key')})`);
      triedBlobs.push(...agent.offered);
    }

    if (this.plan.pubkey && this.allows('publickey')) {
      for (const identity of identities) {
        const attempt = await this.identityAttempt(identity, triedBlobs);
        if (attempt && this.allows('publickey')) yield attempt;
      }
    }

    if (prompter && this.plan.kbdInteractive) {
      for (let i = 0; i < MAX_SECRET_TRIES && this.allows('keyboard-interactive'); i++) {
        const answers = new Map<string, string>();
        if (i === 0) this.tried.push('keyboard-interactive');
        yield {
          method: {
            type: 'keyboard-interactive',
            username,
            prompt: (_name, instructions, _lang, prompts: Prompt[], finish: KeyboardInteractiveCallback) => {
              this.answerPrompts(prompter, instructions, prompts, answers).then(finish, (err: unknown) => {
                this.aborted = err;
                finish([]);
              });
            },
          },
          prove: () => ({ method: 'keyboard-interactive', answers }),
        };
        if (this.aborted) return;
      }
    }

    if (prompter && this.plan.password) {
      for (let i = 0; i < MAX_SECRET_TRIES && this.allows('password'); i++) {
        const ask = `${username}@${this.plan.hostLabel}'s password: `;
        const prompt = i === 0 ? ask : `Permission denied, please try again.\n${ask}`;
        const password = await this.plan.whilePrompting(() => prompter.askSecret(prompt));
        if (i === 0) this.tried.push('password');
        yield { method: { type: 'password', username, password }, prove: () => ({ method: 'password', password }) };
      }
    }
  }

  private async answerPrompts(
    prompter: Prompter,
    instructions: string,
    prompts: Prompt[],
    answers: Map<string, string>,
  ): Promise<string[]> {
    const out: string[] = [];
    for (const [index, p] of prompts.entries()) {
      const text = index === 0 && instructions ? `${instructions}\n${p.prompt}` : p.prompt;
      const answer = await this.plan.whilePrompting(() => prompter.askSecret(text));
      answers.set(p.prompt, answer);
      out.push(answer);
    }
    return out;
  }

  private async identityAttempt(identity: LoadedIdentity, triedBlobs: Buffer[]): Promise<Attempt | undefined> {
    const { source, data } = identity;
    const { username, prompter, cache } = this.plan;
    if (!data) {
      if (identity.readError) this.tried.push(`${source.path} (unreadable: ${identity.readError})`);
      else if (source.origin !== 'default') this.tried.push(`${source.path} (missing)`);
      return undefined;
    }
    // The agent already offered this key; the server's answer will not change.
    if (identity.publicBlob && triedBlobs.some((b) => b.equals(identity.publicBlob!))) return undefined;

    let key = firstKey(utils.parseKey(data));
    if (key instanceof Error && isEncryptedKeyError(key)) {
      const cached = cache.passphrases.get(source.path);
      if (cached !== undefined) key = firstKey(utils.parseKey(data, cached));
      if (key instanceof Error) {
        if (!prompter) {
          this.tried.push(`${source.path} (encrypted; no terminal to ask for its passphrase — load it into ssh-agent)`);
          return undefined;
        }
        const asked = await this.askPassphrase(prompter, source.path, data);
        if (asked === undefined) return undefined;
        key = asked;
      }
    }
    if (key instanceof Error) {
      this.tried.push(`${source.path} (not a usable private key: ${key.message})`);
      return undefined;
    }
    if (!key.isPrivateKey()) {
      this.tried.push(`${source.path} (a public key; pass the private key file)`);
      return undefined;
    }
    const parsed = key;
    if (identity.publicBlob) triedBlobs.push(identity.publicBlob);
    this.tried.push(source.path);
    return {
      method: { type: 'publickey', username, key: parsed },
      prove: () => ({ method: 'publickey', path: source.path, key: parsed }),
    };
  }

  private async askPassphrase(prompter: Prompter, path: string, data: Buffer): Promise<ParsedKey | undefined> {
    for (let i = 0; i < MAX_SECRET_TRIES; i++) {
      const passphrase = await this.plan.whilePrompting(() => prompter.askSecret(`Enter passphrase for key '${path}': `));
      if (passphrase === '') {
        this.tried.push(`${path} (no passphrase given)`);
        return undefined;
      }
      const key = firstKey(utils.parseKey(data, passphrase));
      if (!(key instanceof Error)) {
        this.plan.cache.passphrases.set(path, passphrase);
        return key;
      }
      if (!isBadPassphraseError(key)) {
        this.tried.push(`${path} (not a usable private key: ${key.message})`);
        return undefined;
      }
    }
    this.tried.push(`${path} (wrong passphrase)`);
    return undefined;
  }
}
