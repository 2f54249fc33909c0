import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Database and subprocess tests: generous limits, never used to assert speed.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files share the machine's two cores with other suites: one file at a time.
    fileParallelism: false,
  },
});
