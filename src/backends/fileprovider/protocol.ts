/**
 * The protocol between the FileProvider extension (the `.appex`, a thin
 * client) and the tmount process serving its domain: JSON lines over a Unix
 * socket in the App Group container. README "macOS FileProvider backend"
 * documents the same messages for readers of the Swift side
 * (bundle/Extension/Protocol.swift).
 *
 * The server speaks first:
 *   {"type":"hello","protocol":1,"version":"0.1.0","domain":"tmount-…",
 *    "displayName":"tmount — alice@host:/srv","readonly":false,"staging":"/…/staging"}
 * then answers one response line per request line, matched by `id`, in any
 * order (requests run concurrently):
 *   → {"v":1,"id":7,"op":"item","identifier":"p:docs/a.txt"}
 *   ← {"type":"response","id":7,"ok":true,"result":{"item":{…}}}
 *   ← {"type":"response","id":7,"ok":false,"error":{"code":"notFound","message":"…"}}
 *
 * Every request carries the protocol version `v` it was written for; a
 * request of another version is refused with `unsupportedVersion` (naming
 * the server's version in `protocol`) and the connection stays usable. A
 * line that is not JSON, or lacks an integer `id`, gets a `badRequest`
 * response with `"id":null`. Neither ends the connection.
 *
 * Requests (results in brackets):
 *   item      {identifier}                                   [{item}]
 *   enumerate {container, page: string|null, limit?}          [{items, nextPage: string|null}]
 *   anchor    {}                                             [{anchor}]
 *   changes   {container, anchor, limit?}                    [{updated: Item[], deleted: string[], anchor, more}]
 *   fetch     {identifier}                                   [{item, path}]   contents written to `path` in staging; the client owns the file
 *   create    {parent, filename, kind, contents?, target?, mtime?, mayExist?}  [{item}]
 *   modify    {identifier, filename?, parent?, contents?, mtime?}              [{item}]
 *   delete    {identifier, recursive?}                       [{}]
 *
 * `contents` is a file the client staged in the `staging` directory of the
 * hello; the server reads it and deletes it. Containers are "root",
 * "workingSet", "trash" or an item identifier. Identifiers are "root" or
 * `p:<path>` (`p<n>:<path>` when `p:<path>` is taken by a renamed item).
 * Anchors are opaque strings: an anchor older than the retained journal, or
 * from another run of the server, answers `anchorExpired`, after which the
 * extension reports NSFileProviderErrorSyncAnchorExpired and the system
 * enumerates again from scratch.
 */
export const FP_PROTOCOL_VERSION = 1;

export type ItemKind = 'file' | 'folder' | 'symlink';

export interface WireItem {
  id: string;
  parent: string;
  name: string;
  kind: ItemKind;
  size: number;
  /** Milliseconds since the epoch (SFTP carries whole seconds). */
  mtime: number;
  mode: number;
  target?: string;
  contentVersion: string;
  metadataVersion: string;
  writable: boolean;
}

export interface Hello {
  type: 'hello';
  protocol: number;
  version: string;
  domain: string;
  displayName: string;
  readonly: boolean;
  staging: string;
}

export type ErrorCode =
  | 'badRequest'
  | 'unsupportedVersion'
  | 'unknownOp'
  | 'notFound'
  | 'exists'
  | 'notEmpty'
  | 'notDirectory'
  | 'isDirectory'
  | 'readOnly'
  | 'denied'
  | 'notSupported'
  | 'anchorExpired'
  | 'unavailable'
  | 'timeout'
  | 'io';

export interface WireError {
  code: ErrorCode;
  message: string;
  /** unsupportedVersion: the version this server speaks. */
  protocol?: number;
  /** exists: the item already at that name. */
  item?: WireItem;
}

export type Response =
  | { type: 'response'; id: number | null; ok: true; result: unknown }
  | { type: 'response'; id: number | null; ok: false; error: WireError };

export const OPS = ['item', 'enumerate', 'anchor', 'changes', 'fetch', 'create', 'modify', 'delete'] as const;
export type Op = (typeof OPS)[number];

export interface RequestBase {
  v: number;
  id: number;
  op: string;
  [field: string]: unknown;
}

/** A refusal the client sees as `error`; anything else thrown while serving becomes `io`. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Partial<Pick<WireError, 'protocol' | 'item'>> = {},
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Splits a byte stream into lines, one at a time, so that one bad line
 * costs one error response and not the connection. A line longer than
 * `maxLine` is dropped up to its newline and reported once.
 */
export class LineSplitter {
  private buffer = '';
  private skipping = false;

  constructor(private readonly maxLine = 1024 * 1024) {}

  push(chunk: string): { lines: string[]; overlong: number } {
    this.buffer += chunk;
    const lines: string[] = [];
    let overlong = 0;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (line.trim() !== '') lines.push(line);
    }
    if (this.buffer.length > this.maxLine) {
      if (!this.skipping) overlong++;
      this.skipping = true;
      this.buffer = '';
    }
    return { lines, overlong };
  }
}

export function encodeLine(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}

/** The request fields as the server reads them, with a badRequest naming what is wrong. */
export function field<T extends 'string' | 'number' | 'boolean'>(
  request: RequestBase,
  name: string,
  type: T,
  required: boolean,
): (T extends 'string' ? string : T extends 'number' ? number : boolean) | undefined {
  const value = request[name];
  if (value === undefined || value === null) {
    if (required) throw new ProtocolError('badRequest', `${request.op}: the field '${name}' is missing`);
    return undefined;
  }
  if (typeof value !== type || (type === 'number' && !Number.isFinite(value))) {
    throw new ProtocolError('badRequest', `${request.op}: the field '${name}' must be a ${type}, not ${JSON.stringify(value).slice(0, 40)}`);
  }
  return value as never;
}
