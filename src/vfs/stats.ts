/** The counters `tmount status` reports per mount (DESIGN.md, status schema). */
export interface FsStats {
  ops: number;
  bytesRead: number;
  bytesWritten: number;
  cacheHits: number;
  cacheMisses: number;
  errors: number;
}

export function newStats(): FsStats {
  return { ops: 0, bytesRead: 0, bytesWritten: 0, cacheHits: 0, cacheMisses: 0, errors: 0 };
}
