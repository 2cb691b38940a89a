// Types of sessionrank-client.js (the Worker wrapper). Shapes are those of the main package.
import type { CandidateInput, Ranking, SessionEvent } from "./sessionrank.js";

export interface BundleBytes {
  manifest: Uint8Array;
  files: Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>;
}

export declare class RerankerClient {
  /** Start a module worker and load a bundle in it (a browser bundle's manifest URL,
   *  `/v1/models/<version>/browser/manifest.json`, or bytes). Rejects with a `SessionrankError`. */
  static load(source: string | BundleBytes, options?: { workerUrl?: string | URL }): Promise<RerankerClient>;
  readonly modelVersion: string;
  /** With a browser bundle give each event the item's `vector` from the candidate page; it is
   *  kept in the stored session and replayed with it after a reload. */
  observe(event: SessionEvent): Promise<void>;
  rerank(candidates: CandidateInput[]): Promise<Ranking>;
  /** The session so far, oldest first (a copy of what `observe` accepted). */
  session(): SessionEvent[];
  reset(): Promise<void>;
  terminate(): void;
}
