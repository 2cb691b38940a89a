// Types of sessionrank-prefetch.js, exported by `sessionrank`.

/** The downloads `prefetchBundle` started, for `Reranker.load(url, { prefetched })`. */
export interface PrefetchedBundle {
  /** The manifest's absolute URL (`load` refuses a prefetch of another URL). */
  url: string;
  /** The manifest's response. */
  manifest: Promise<Response>;
  /** Each file the manifest lists (but `model.safetensors`) → its response. */
  files: Promise<Record<string, Promise<Response>>>;
}

/** Start downloading a browser bundle (its manifest, then every file it lists) now, before
 *  the wasm module is ready; pass the result to `Reranker.load(url, { prefetched })`, which
 *  checks everything as if it had fetched the files itself. On a cold page the bundle then
 *  downloads while the module compiles instead of after it. */
export declare function prefetchBundle(manifestUrl: string | URL): PrefetchedBundle;
