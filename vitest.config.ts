import { defineConfig } from 'vitest/config';

// Tests never assert on time, but CI's two cores run the property tests, the Cedar corpus and the
// PostgreSQL suites side by side: the limits only catch hangs, so they are generous.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
