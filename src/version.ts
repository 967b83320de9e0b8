import { createRequire } from 'node:module';

/** This tmount's version, from package.json (this file compiles to dist/version.js). */
export const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
