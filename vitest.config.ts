import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file may start its own sshd and mounts: forks isolate native state
    // and let a hung file be killed without taking the others down.
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 20_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
