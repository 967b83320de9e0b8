/**
 * Exactly what addons/cloud-files exports (tmount_cloud_files.node, Windows
 * only). Loaded through platform/addon-loader.ts; nothing else imports the
 * addon. The addon does cfapi and WinRT calls and moves requests between
 * threads; every decision (what to list, which bytes, which status) is made
 * in TypeScript.
 *
 * Threads: cfapi runs the callbacks of a connected sync root on its own
 * threads. The addon copies what a callback lends (paths, keys, ranges),
 * queues the request to `handler` on the JS main thread through one
 * ThreadSafeFunction and returns at once. JS answers later by request id
 * with the connection's methods. A request JS leaves unanswered for
 * `requestTimeoutMs` (counted from the last answer it gave for that
 * request) is completed by the addon's watchdog thread with
 * STATUS_CLOUD_FILE_REQUEST_TIMEOUT; later answers for it resolve to false.
 *
 * Every function that touches a file runs on the libuv thread pool and
 * returns a promise, because cfapi may block on the provider, i.e. on this
 * very process: a synchronous call from the JS main thread could wait for
 * the thread that has to answer it.
 *
 * Errors are Error objects whose message names the Windows call and the
 * HRESULT ("CfExecute(TRANSFER_DATA) failed: 0x8007017C (…)"), with the
 * HRESULT as `hresult` (an unsigned 32-bit number).
 */

/** What a completion tells the platform; the addon maps each to its NTSTATUS. */
export type CfStatus =
  | 'success'
  | 'unsuccessful'
  | 'notFound'
  | 'accessDenied'
  | 'notEmpty'
  | 'exists'
  | 'timeout'
  | 'networkUnavailable'
  | 'notSupported'
  | 'inUse'
  | 'diskFull'
  | 'invalidRequest';

/** CF_FS_METADATA: times in ms since the Unix epoch, converted to FILETIME by the addon. */
export interface CfFsMetadata {
  size: number;
  /** FILE_ATTRIBUTE_* bits; FILE_ATTRIBUTE_DIRECTORY makes a directory placeholder. */
  attributes: number;
  createdMs: number;
  modifiedMs: number;
  accessedMs: number;
  changedMs: number;
}

/** One CF_PLACEHOLDER_CREATE_INFO. */
export interface CfPlaceholder {
  /** A single path component. */
  name: string;
  metadata: CfFsMetadata;
  /** Stored as the placeholder's FileIdentity (at most 4 KiB); cfapi hands it back in callbacks. */
  identity: Buffer;
  /** CF_PLACEHOLDER_CREATE_FLAG_MARK_IN_SYNC. */
  markInSync: boolean;
  /** Directories: CF_PLACEHOLDER_CREATE_FLAG_DISABLE_ON_DEMAND_POPULATION (no FETCH_PLACEHOLDERS for it). */
  populated: boolean;
}

/** CF_PLACEHOLDER_CREATE_INFO.Result after the platform processed the entry. */
export interface CfPlaceholderResult {
  name: string;
  /** S_OK, HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)…, or E_PENDING when the entry was not processed. */
  hresult: number;
}

/** The process that caused a callback (CF_CONNECT_FLAG_REQUIRE_PROCESS_INFO), for --debug logs. */
export interface CfProcessInfo {
  pid: number;
  image: string;
}

/**
 * Paths come as cfapi gives them: `volume` is CF_CALLBACK_INFO.VolumeDosName
 * ("C:"), `path` its NormalizedPath (volume-relative, "\Users\…"), and the
 * rename target is volume-relative too. TypeScript joins them.
 */
type Req<Op extends string, Fields> = { op: Op; id: number; volume: string; path: string; process?: CfProcessInfo } & Fields;

export type CfRequest =
  /** CF_CALLBACK_TYPE_FETCH_PLACEHOLDERS: answer with transferPlaceholders, or complete() with an error. */
  | Req<'fetchPlaceholders', { pattern: string }>
  /**
   * CF_CALLBACK_TYPE_FETCH_DATA: answer with transferData (4 KiB-aligned
   * offsets and lengths, except a last range ending at `fileSize`), then
   * complete(id, 'success'); or complete() with an error. A length of -1
   * means "to the end of the file" (CF_EOF).
   */
  | Req<
      'fetchData',
      {
        transferKey: string;
        fileSize: number;
        requiredOffset: number;
        requiredLength: number;
        optionalOffset: number;
        optionalLength: number;
        /** CF_CALLBACK_FETCH_DATA_FLAG_EXPLICIT_HYDRATION: caused by CfHydratePlaceholder. */
        explicit: boolean;
      }
    >
  /** CF_CALLBACK_TYPE_CANCEL_FETCH_DATA: no answer; `id` is 0. Stop the fetches it covers. */
  | Req<'cancelFetchData', { transferKey: string; offset: number; length: number }>
  /**
   * CF_CALLBACK_TYPE_NOTIFY_DELETE: the delete waits for complete():
   * 'success' lets it happen, any other status refuses it. `undelete`
   * (CF_CALLBACK_DELETE_FLAG_IS_UNDELETE): an announced delete is taken back.
   */
  | Req<'notifyDelete', { isDirectory: boolean; undelete: boolean }>
  /** CF_CALLBACK_TYPE_NOTIFY_RENAME: the rename waits for complete(), as a delete does. */
  | Req<'notifyRename', { target: string; isDirectory: boolean; sourceInScope: boolean; targetInScope: boolean }>
  /** CF_CALLBACK_TYPE_NOTIFY_FILE_CLOSE_COMPLETION: no answer; `id` is 0. */
  | Req<'notifyFileClose', { deleted: boolean }>;

export interface SyncRootConnectionOptions {
  /** Longest JS may stay silent on a request before the addon fails it (ms). */
  requestTimeoutMs: number;
}

export interface SyncRootConnection {
  /** CfConnectSyncRoot. Throws an Error naming the call and HRESULT. */
  connect(): void;
  /**
   * Fails every pending request, then CfDisconnectSyncRoot. Resolves when no
   * callback can reach the handler any more. Idempotent.
   */
  disconnect(): Promise<void>;
  /** CfExecute(TRANSFER_DATA). Resolves false when the request is no longer pending (timed out, cancelled). */
  transferData(id: number, offset: number, data: Buffer): Promise<boolean>;
  /**
   * CfExecute(TRANSFER_PLACEHOLDERS) with every placeholder of the answer,
   * which completes the request. Resolves false when it was no longer pending.
   */
  transferPlaceholders(id: number, placeholders: CfPlaceholder[], options: { disableOnDemandPopulation: boolean }): Promise<CfPlaceholderResult[] | false>;
  /**
   * Ends a request. An error status fails it (TRANSFER_DATA or
   * TRANSFER_PLACEHOLDERS with that status, or a refusing ACK); 'success'
   * acks a delete or rename and ends a fetch whose data was transferred.
   * Resolves false when the request was no longer pending.
   */
  complete(id: number, status: CfStatus): Promise<boolean>;
  /** Forgets a request without answering it (a fetch the platform cancelled). */
  forget(id: number): void;
  /** CfReportProviderProgress for a fetch; also restarts its timeout. */
  reportProgress(id: number, total: number, completed: number): void;
  /** Requests waiting for an answer. */
  readonly pending: number;
}

export interface SyncRootRegistration {
  /** StorageProviderSyncRootInfo.Id: "<provider>!<user SID>!<account>". */
  id: string;
  /** Existing folder, absolute, long form (no 8.3 names). */
  path: string;
  /** What Explorer's navigation pane shows. */
  displayName: string;
  /** "file,index" as SHLoadIndirectString/ExtractIcon take it. */
  iconResource: string;
  version: string;
  /** StorageProviderHydrationPolicy / CF_HYDRATION_POLICY_PRIMARY. */
  hydration: 'progressive' | 'full';
  /** Stored with the registration (StorageProviderSyncRootInfo.Context), for people inspecting a stale one. */
  context: string;
}

export interface SyncRootRegistered {
  /** True when StorageProviderSyncRootManager registered it (navigation pane entry); false after the CfRegisterSyncRoot fallback. */
  shell: boolean;
  /** Why the shell registration failed, when `shell` is false. */
  detail: string;
}

/** What the addon reads of a local file or directory; placeholderState() resolves null when it does not exist. */
export interface RawLocalState {
  isDirectory: boolean;
  /** FILE_ATTRIBUTE_* bits (PINNED, UNPINNED, RECALL_ON_DATA_ACCESS…). */
  attributes: number;
  size: number;
  modifiedMs: number;
  /** CfGetPlaceholderInfo succeeded. */
  placeholder: boolean;
  /** CF_IN_SYNC_STATE, -1 when not a placeholder. */
  inSyncState: number;
  /** CF_PIN_STATE, -1 when not a placeholder. */
  pinState: number;
  /** CF_PLACEHOLDER_STANDARD_INFO.OnDiskDataSize, -1 when not a placeholder. */
  onDiskDataSize: number;
  /** The file's current USN (FSCTL_READ_FILE_USN_DATA), when the volume keeps a journal. */
  usn?: bigint;
}

export interface PlaceholderUpdate {
  /** New metadata; omitted keeps the current one. */
  metadata?: CfFsMetadata;
  /** CF_UPDATE_FLAG_VERIFY_IN_SYNC: fail instead of touching a locally modified file. */
  verifyInSync?: boolean;
  markInSync?: boolean;
  /** Drop the local data (files); opens the file with an exclusive oplock first. */
  dehydrate?: boolean;
  /** Directories: ask for FETCH_PLACEHOLDERS again on the next enumeration, or stop asking. */
  onDemandPopulation?: boolean;
  /** Only update if the file still has this USN. */
  usn?: bigint;
}

export type CfPinState = 'unspecified' | 'pinned' | 'unpinned' | 'excluded' | 'inherit';

export interface CloudFilesAddon {
  SyncRootConnection: new (path: string, handler: (request: CfRequest) => void, options: SyncRootConnectionOptions) => SyncRootConnection;
  /** String SID of the process's user ("S-1-5-21-…"), for sync-root ids. */
  currentUserSid(): string;
  /** StorageProviderSyncRootManager.Register, falling back to CfRegisterSyncRoot when the shell refuses. */
  registerSyncRoot(registration: SyncRootRegistration): Promise<SyncRootRegistered>;
  /** StorageProviderSyncRootManager.Unregister, then CfUnregisterSyncRoot; rejects only when neither succeeds. */
  unregisterSyncRoot(id: string, path: string): Promise<void>;
  /** CfCreatePlaceholders in `directory` (absolute); resolves with each entry's result, also when some failed. */
  createPlaceholders(directory: string, placeholders: CfPlaceholder[]): Promise<CfPlaceholderResult[]>;
  placeholderState(path: string): Promise<RawLocalState | null>;
  /** CfUpdatePlaceholder; resolves with the file's USN afterwards. */
  updatePlaceholder(path: string, update: PlaceholderUpdate): Promise<bigint>;
  /** CfSetInSyncState; with `usn`, only when the file still has that USN (rejects otherwise). */
  setInSyncState(path: string, inSync: boolean, usn?: bigint): Promise<bigint>;
  /** CfConvertToPlaceholder; resolves with the USN afterwards. */
  convertToPlaceholder(path: string, identity: Buffer, options: { markInSync: boolean; onDemandPopulation: boolean }): Promise<bigint>;
  /**
   * CfHydratePlaceholder of the whole file. Holds a thread-pool thread until
   * this process's own provider has answered the FETCH_DATA it causes: run
   * one at a time, or the pool starves.
   */
  hydrate(path: string): Promise<void>;
  /** CfDehydratePlaceholder of the whole file (exclusive oplock first). */
  dehydrate(path: string): Promise<void>;
  /** CfSetPinState, optionally for everything below a directory. */
  setPinState(path: string, state: CfPinState, recurse: boolean): Promise<void>;
}
