// Start a browser bundle's downloads before the wasm module is ready: plain JS that needs no
// wasm, so the manifest and weights travel while the module downloads and compiles instead
// of after it (on a cold page they took ~45 ms of the ~190 ms, one after the other).
//
//   import init, { Reranker, prefetchBundle } from "sessionrank";
//   const bundle = prefetchBundle(manifestUrl); // downloads start now
//   await init();                               // the module compiles meanwhile
//   const r = await Reranker.load(manifestUrl, { prefetched: bundle });
//
// Nothing is checked here: `Reranker.load` reads these responses exactly as it reads its own
// (HTTP status, network failure, the format version, every sha256) and fetches what the
// prefetch did not start. A prefetch of another manifest URL is refused there.

/** The file the browser bundle never needs (the full bundle's PyTorch-readable copy). */
const SAFETENSORS = "model.safetensors";

/**
 * @param {string | URL} manifestUrl the browser bundle's `manifest.json` (relative URLs are
 *   resolved against the page's or worker's location, as `Reranker.load` resolves them)
 * @returns {import("./sessionrank-prefetch.js").PrefetchedBundle}
 */
export function prefetchBundle(manifestUrl) {
  const url = new URL(manifestUrl, globalThis.location?.href).href;
  const manifest = fetch(url);
  // The file list comes from the manifest; a manifest that is not JSON lists nothing here
  // and is refused by `load` with its own error.
  const files = manifest
    .then((response) => (response.ok ? response.clone().json() : { files: {} }))
    .then((m) => {
      /** @type {Record<string, Promise<Response>>} */
      const started = {};
      const names = m && typeof m.files === "object" && m.files !== null ? Object.keys(m.files) : [];
      for (const name of names) {
        if (name !== SAFETENSORS) started[name] = fetch(new URL(name, url).href);
      }
      return started;
    })
    .catch(() => ({}));
  return { url, manifest, files };
}
