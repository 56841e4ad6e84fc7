import { defineConfig } from "vite";

// Relative asset paths: `kiln ui` serves the built app from any directory.
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against a running `kiln ui --port 8080`.
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
