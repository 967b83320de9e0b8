import { fileURLToPath } from 'node:url';

/** The package's top folder: this file compiles to dist/platform/. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
