// The two conversions of a re-rank that touch every candidate, done in JavaScript in one
// call each (crates/wasm/src/bulk.rs). Going through wasm-bindgen one property, string and
// number at a time costs a boundary crossing each: ~8 per candidate on the way in and a
// JSON.parse of ~24 KB on the way out, most of a click (BENCHMARKS.md, issue 19).

// Reused between calls: a fresh ArrayBuffer per call would feed the garbage collector.
let packedVectors = new Float32Array(0);
let packedFlags = new Uint8Array(0);

/** A safe integer or a string: the item ids the fast path takes as they are. */
const plainItemId = (id) => typeof id === "string" || Number.isSafeInteger(id);

/**
 * The common shape of a candidate list — ids, or `{itemId, vector?, available?}` with a
 * `Float32Array` or array vector of `dim` numbers — packed as `{ids, vectors, flags}`: the ids
 * as one JSON string, the vectors in one `Float32Array` (row i at i * dim), and per candidate
 * bit 0 = has a vector, bit 1 = `available: false`. Anything else (content, another vector
 * length, an odd id, more than `max` candidates) returns null: the caller then converts the
 * list element by element and reports the exact field at fault.
 */
export function packCandidates(list, dim, max) {
  if (!Array.isArray(list) || list.length > max) return null;
  const n = list.length;
  if (packedVectors.length < n * dim) packedVectors = new Float32Array(n * dim);
  if (packedFlags.length < n) packedFlags = new Uint8Array(n);
  const ids = new Array(n);
  for (let i = 0; i < n; i++) {
    const c = list[i];
    if (typeof c === "string" || typeof c === "number") {
      if (!plainItemId(c)) return null;
      ids[i] = c;
      packedFlags[i] = 0;
      continue;
    }
    if (c === null || typeof c !== "object" || c.content != null) return null;
    let id = c.itemId;
    if (id === undefined) id = c.item_id;
    if (!plainItemId(id)) return null;
    ids[i] = id;
    let f = 0;
    const v = c.vector;
    if (v != null) {
      if (!(v instanceof Float32Array || Array.isArray(v)) || v.length !== dim) return null;
      packedVectors.set(v, i * dim);
      f = 1;
    }
    if (c.available === false) f |= 2;
    packedFlags[i] = f;
  }
  return { ids: JSON.stringify(ids), vectors: packedVectors.subarray(0, n * dim), flags: packedFlags.subarray(0, n) };
}

/**
 * A ranking as the page sees it, from its parts: `text` holds every string and number of the
 * items back to back, `ends` where each piece ends (UTF-16 units); per item, in the final
 * order: id, score, explanation, then id and weight of each of its `because[i]` session
 * items. `ranks` are the upstream ranks; `rest` is the JSON of the remaining, small fields
 * (`effects` is null when no rule touched any item). Numbers travel as the shortest decimal
 * of their f32, as `JSON.parse` would have read them.
 */
export function buildRanking(text, ends, ranks, because, rest) {
  const r = JSON.parse(rest);
  let piece = 0;
  let start = 0;
  const next = () => {
    const end = ends[piece++];
    const s = text.slice(start, end);
    start = end;
    return s;
  };
  const n = ranks.length;
  const items = new Array(n);
  for (let i = 0; i < n; i++) {
    const itemId = next();
    const score = Number(next());
    const explanation = next();
    const b = new Array(because[i]);
    for (let k = 0; k < b.length; k++) {
      const id = next();
      b[k] = { itemId: id, weight: Number(next()) };
    }
    items[i] = {
      itemId,
      score,
      upstreamRank: ranks[i],
      because: b,
      effects: r.effects === null ? {} : r.effects[i],
      explanation,
    };
  }
  return {
    items,
    personalised: r.personalised,
    reason: r.reason,
    hidden: r.hidden,
    backend: r.backend,
    millis: r.millis,
    timings: r.timings,
  };
}
