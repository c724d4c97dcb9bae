import { defineConfig } from "vitest/config";

// `pnpm test`: unit and fast integration tests (a few minutes on 2 cores).
// Slow end-to-end training tests are named *.slow.test.ts and run by `pnpm test:slow`.
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**", "**/*.slow.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
