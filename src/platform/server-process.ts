/**
 * Node flags for the process that serves a mount.
 *
 * A large write keeps tens of MB of Buffers in flight (kernel write data,
 * write-back ranges, SSH packets), and while V8's old generation is at its
 * initial few MB it answers that external memory with a full collection every
 * ~30-80 ms. Starting the old generation at 64 MB cut those from about 45 to
 * 14 per 512 MiB written and the serving process's CPU by about a quarter,
 * for about 10 MB more peak memory. V8 sizes its heap only at start, and
 * NODE_OPTIONS does not accept this flag, so it goes on the command line of
 * the process `tmount mount` starts (and of the benchmark's).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
