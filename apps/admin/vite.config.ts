import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, manifest: true, chunkSizeWarningLimit: 600 },
  // `npm run dev`: the API runs on the server (npm start), the UI here with hot reload.
  server: { proxy: { "/trpc": "http://127.0.0.1:8080", "/api": "http://127.0.0.1:8080" } },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.{ts,tsx}"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
});
