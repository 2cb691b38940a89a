// Types of sessionrank-client.js (the Worker wrapper). Shapes are those of the main package.
import type { CandidateInput, Ranking, SessionEvent } from "./sessionrank.js";

export interface BundleBytes {
  manifest: Uint8Array;
  files: Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>;
}

export declare class RerankerClient {
  /** Start a module worker and load a bundle in it. Rejects with a `SessionrankError`. */
  static load(source: string | BundleBytes, options?: { workerUrl?: string | URL }): Promise<RerankerClient>;
  readonly modelVersion: string;
  observe(event: SessionEvent): Promise<void>;
  rerank(candidates: CandidateInput[]): Promise<Ranking>;
  /** The session so far, oldest first (a copy of what `observe` accepted). */
  session(): SessionEvent[];
  reset(): Promise<void>;
  terminate(): void;
}
