// @ts-check
// Item vectors of a shop's own list (its search engine's ids) from the server's
// `/v1/models/{version}/vectors`, for `rerank([{ itemId, vector }])` with a browser bundle of
// the same version. Plain fetches, no worker and no wasm: exported by `sessionrank` (the direct
// API) and by `sessionrank/worker` alike.

/** The longest `?ids=` URL `fetchVectors` sends as a GET; a longer list goes in a POST body. */
const MAX_GET_URL = 2000;

/**
 * The vectors of a shop's own list (its search engine's ids) from model `version`: a `Map`
 * from id to vector, for `rerank([{ itemId, vector }])`. Ids the model cannot give a vector
 * are absent. Repeats are asked once; at most 1000 ids per request (the route's limit), the
 * requests in parallel. A list whose URL stays short is a `GET …/vectors?ids=…` (cacheable:
 * immutable when the model knows every id); a longer one is a
 * `POST {base}/v1/models/{version}/vectors` with `{"ids": […]}`. `method` forces one.
 * Rejects with `code: "network"` or `"http_status"`.
 * @param {string} version
 * @param {(string | number)[]} ids
 * @param {{ base?: string | URL, method?: "auto" | "get" | "post" }} [options] `base`: the
 *   server's origin (default: this page's)
 * @returns {Promise<Map<string, number[]>>}
 */
export async function fetchVectors(version, ids, { base = location.href, method = "auto" } = {}) {
  const unique = [...new Set(ids.map(String))];
  const route = new URL(`/v1/models/${encodeURIComponent(version)}/vectors`, base);
  /** @type {string[][]} */
  const chunks = [];
  for (let i = 0; i < unique.length; i += 1000) chunks.push(unique.slice(i, i + 1000));
  const answers = await Promise.all(chunks.map(async (chunk) => {
    const get = new URL(`${route.href}?ids=${chunk.map(encodeURIComponent).join(",")}`);
    const post = method === "post" || (method === "auto" && get.href.length > MAX_GET_URL);
    const url = post ? route : get;
    /** @type {RequestInit} */
    const init = post
      ? { method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ ids: chunk }) }
      : {};
    let r;
    try {
      r = await fetch(url, init);
    } catch (e) {
      throw Object.assign(new Error(`${url}: ${e?.message ?? e}`), {
        name: "SessionrankError", code: "network", url: url.href });
    }
    if (!r.ok) {
      throw Object.assign(new Error(`${url}: HTTP ${r.status}`), {
        name: "SessionrankError", code: "http_status", url: url.href, status: r.status });
    }
    /** @type {{ vectors: { item_id: string, vector: number[] }[] }} */
    const body = await r.json();
    return body.vectors;
  }));
  /** @type {Map<string, number[]>} */
  const out = new Map();
  for (const vectors of answers) for (const v of vectors) out.set(v.item_id, v.vector);
  return out;
}
