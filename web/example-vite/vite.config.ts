import { defineConfig } from "vite";

// The package needs nothing special: its worker (`new Worker(new URL(…, import.meta.url))`)
// and its .wasm (`new URL("./…_bg.wasm", import.meta.url)`) are emitted by Vite as they are.
export default defineConfig({
  // The dev server's dependency pre-bundling would move the package's modules away from its
  // .wasm files; the production build does not need this.
  optimizeDeps: { exclude: ["sessionrank"] },
  // The worker imports the WebGPU artefact lazily: module workers keep that a separate chunk.
  worker: { format: "es" },
  build: { target: "es2022" },
});
