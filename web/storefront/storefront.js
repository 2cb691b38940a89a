// @ts-check
// The integration a shop copies: no build tool, no framework. The shop's own page already has
// its product list in upstream order; sessionrank re-orders it in a Web Worker after each click.
import { RerankerClient } from "../pkg/sessionrank-client.js";

const list = /** @type {HTMLOListElement} */ (document.getElementById("products"));
const status = /** @type {HTMLElement} */ (document.getElementById("status"));
const modelUrl = new URLSearchParams(location.search).get("model");

// 1. The shop's candidates, in its own order, each with its vector from the server's model
//    (here: the server's popularity page; `/v1/models/<version>/vectors?ids=…` for your own list).
/** @type {{ model_version: string | null, items: { id: string, text: string, category: string | null, price_level: number | null, vector: number[] }[] }} */
const page = await (await fetch("/v1/candidates?limit=40")).json();
const { items } = page;
const vectors = new Map(items.map((p) => [p.id, p.vector]));
const candidates = items.map((p) => ({ itemId: p.id, vector: p.vector, content: { text: p.text, category: p.category ?? undefined, priceLevel: p.price_level ?? undefined } }));
show(items.map((p) => p.id));

// 2. The model — its small browser bundle, the version the vectors came from: never let a
//    failure here break the page — keep the shop's order.
/** @type {RerankerClient | null} */
let reranker = null;
try {
  if (!modelUrl && !page.model_version) throw Object.assign(new Error("no model is live"), { code: "no_model" });
  const manifest = modelUrl ?? `/v1/models/${encodeURIComponent(String(page.model_version))}/browser/manifest.json`;
  reranker = await RerankerClient.load(manifest);
  document.body.dataset.state = "ready";
  status.textContent = `Personalised by model ${reranker.modelVersion}.`;
  if (reranker.session().length) show((await reranker.rerank(candidates)).items.map((i) => i.itemId));
} catch (e) {
  document.body.dataset.state = "degraded";
  status.textContent = `Personalisation is off (${e.code ?? e.message}); usual order.`;
}

// 3. Every click: record it, re-rank, re-order.
list.addEventListener("click", async (e) => {
  const id = /** @type {Element} */ (e.target).closest("li")?.dataset.itemId;
  if (!id || !reranker) return;
  try {
    await reranker.observe({ itemId: id, kind: "click", vector: vectors.get(id) });
    const ranking = await reranker.rerank(candidates);
    show(ranking.items.map((i) => i.itemId));
    status.textContent = `Re-ranked in ${ranking.millis.toFixed(1)} ms on this device.`;
  } catch (err) {
    status.textContent = `Personalisation paused (${err.code ?? err.message}).`;
  }
});

/** @param {string[]} ids */
function show(ids) {
  list.replaceChildren(...ids.map((id) => {
    const li = document.createElement("li");
    li.dataset.itemId = id;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `Product ${id}`;
    li.append(b);
    return li;
  }));
  document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
}
