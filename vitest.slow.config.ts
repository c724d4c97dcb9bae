import { defineConfig } from "vitest/config";

// `pnpm test:slow`: end-to-end fingerprinting runs on real models (run by .ci/run too).
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.slow.test.ts", "packages/*/test/**/*.slow.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 1_800_000,
    hookTimeout: 600_000,
    pool: "forks",
    maxWorkers: 1,
  },
});
