/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// the build goes where the Python package serves it from (package data, not committed)
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "../src/threadline/ui_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  test: { environment: "node" },
});
