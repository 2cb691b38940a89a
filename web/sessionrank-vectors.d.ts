// Types of sessionrank-vectors.js: the vectors of a shop's own list, exported by `sessionrank`
// and by `sessionrank/worker`.

/** `fetchVectors`'s options. */
export interface FetchVectorsOptions {
  /** The server's origin (default: this page's). */
  base?: string | URL;
  /** `"auto"` (default): a GET while the `?ids=` URL stays under 2000 characters (cacheable),
   *  else a POST with the ids in a JSON body; `"get"` / `"post"` force one. */
  method?: "auto" | "get" | "post";
}

/** The vectors of a shop's own list (its search engine's ids) from model `version`, for
 *  `rerank([{ itemId, vector }])`: one request per 1000 distinct ids (in parallel),
 *  `GET {base}/v1/models/{version}/vectors?ids=…` or, for a long list,
 *  `POST {base}/v1/models/{version}/vectors` with `{"ids": […]}`. Ids without a vector are
 *  absent. Rejects with a `SessionrankError` (`network`, `http_status`). */
export declare function fetchVectors(
  version: string,
  ids: (string | number)[],
  options?: FetchVectorsOptions,
): Promise<Map<string, number[]>>;
