// @ts-check
// The demo storefront: a candidate page from the server (upstream order), re-ranked in the
// browser after every action by the sessionrank package running in a Web Worker.
//
// The browser downloads only the browser bundle of the model (`/v1/models/<version>/browser/`:
// no item table, no tokenizer); every candidate arrives with its vector, computed by the
// server's full model, and the page hands those vectors to the engine with each candidate and
// with each click. The version comes from the candidate page, so vectors and model always
// belong together.
//
// URL parameters (all optional): `model` — a manifest URL instead of the candidate page's
// model; `limit` — candidates on the page (default 60).
//
// Everything the end-to-end test reads is in the DOM: `body[data-state]` (loading, ready,
// degraded), `body[data-renders]` (grid renders so far), `#grid[data-order]` (personalised or
// upstream) and `li[data-item-id]` in visible order; the session panel lists the events with
// their timestamps.

import { RerankerClient } from "../pkg/sessionrank-client.js";

/**
 * An item of the candidate page (`GET /v1/candidates`).
 * @typedef {object} Item
 * @property {string} id
 * @property {string} [text]
 * @property {string | null} [category]
 * @property {number | null} [price_level]
 * @property {number[]} vector
 *
 * @typedef {import("../pkg/sessionrank.js").Ranking} Ranking
 * @typedef {Pick<import("../pkg/sessionrank.js").RankedItem, "itemId" | "upstreamRank" | "because">} Shown
 */

const params = new URLSearchParams(location.search);
const limit = params.get("limit") ?? "60";
/** An element of index.html (every id this script uses is there). */
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const checkbox = () => /** @type {HTMLInputElement} */ ($("personalise"));

const view = {
  /** @type {Item[]} upstream order */
  candidates: [],
  /** @type {string | null} the version the candidates' vectors belong to */
  modelVersion: null,
  /** @type {Map<string, Item>} */
  byId: new Map(),
  /** @type {RerankerClient | null} */
  client: null,
  personalise: true,
  renders: 0,
  /** @type {Ranking | null} */
  lastRanking: null,
  /** @type {string | null} */
  focusId: null,
};

// One action at a time: clicks queue behind the re-rank in flight, in order.
/** @type {Promise<unknown>} */
let queue = Promise.resolve();
const enqueue = (/** @type {() => Promise<unknown>} */ job) => (queue = queue.then(job).catch((e) => showError(e)));

main();

async function main() {
  checkbox().addEventListener("change", () => enqueue(() => togglePersonalise(checkbox().checked)));
  $("reset").addEventListener("click", () => enqueue(resetSession));
  $("grid").addEventListener("click", (e) => {
    const button = /** @type {HTMLElement | null} */ (/** @type {Element} */ (e.target).closest("button[data-action]"));
    if (!button) return;
    const id = /** @type {string} */ (/** @type {HTMLLIElement} */ (button.closest("li")).dataset.itemId);
    enqueue(() => act(id, button.dataset.action === "cart" ? "add_to_cart" : "click"));
  });

  try {
    const page = await fetchCandidates();
    view.candidates = page.items;
    view.modelVersion = page.model_version ?? null;
  } catch (e) {
    document.body.dataset.state = "degraded";
    setStatus(`The catalog could not be loaded (${describe(e)}). Is the server running?`);
    return;
  }
  for (const c of view.candidates) view.byId.set(c.id, c);
  renderUpstream("Personalisation starts with your first click.");

  try {
    const manifestUrl = params.get("model") ?? browserManifestUrl();
    view.client = await RerankerClient.load(manifestUrl);
    if (view.client.modelVersion !== view.modelVersion) {
      const loaded = view.client.modelVersion;
      view.client.terminate();
      view.client = null;
      throw Object.assign(new Error(`the page's item vectors belong to model ${view.modelVersion ?? "none"}, not ${loaded}`), { code: "version_mismatch" });
    }
  } catch (e) {
    degrade(`Personalisation is off: the model could not be loaded (${describe(e)}). Products are shown in their usual order.`);
    return;
  }
  $("model-version").textContent = view.client.modelVersion;
  document.body.dataset.state = "ready";
  renderSession();
  if (view.client.session().length) {
    await enqueue(rerank);
  } else {
    setStatus("Ready. Open a few products: the list re-orders in your browser after every click.");
  }
}

/** The candidate page: `{model_version, items: [{id, text, category, price_level, vector}]}`. */
async function fetchCandidates() {
  const r = await fetch(`/v1/candidates?limit=${encodeURIComponent(limit)}`);
  if (!r.ok) throw new Error(`HTTP ${r.status} from /v1/candidates`);
  const body = await r.json();
  if (!Array.isArray(body.items) || body.items.length === 0) throw new Error("the catalog is empty");
  return body;
}

/** The browser bundle of the model the candidates' vectors came from. */
function browserManifestUrl() {
  if (!view.modelVersion) throw Object.assign(new Error("no model has been published yet"), { code: "no_model" });
  return `/v1/models/${encodeURIComponent(view.modelVersion)}/browser/manifest.json`;
}

/** The package's candidate shape: ids with the server's vectors (content too, for an item
 *  that would arrive without one). */
function candidateInputs() {
  return view.candidates.map((c) => ({
    itemId: c.id,
    vector: c.vector,
    content: { text: c.text ?? "", category: c.category ?? undefined, priceLevel: c.price_level ?? undefined },
  }));
}

/**
 * @param {string} itemId
 * @param {"click" | "add_to_cart"} kind
 */
async function act(itemId, kind) {
  view.focusId = itemId;
  if (!view.client) {
    setStatus("Personalisation is off; the list keeps its usual order.");
    return;
  }
  await view.client.observe({ itemId, kind, timestamp: Date.now(), vector: view.byId.get(itemId)?.vector });
  renderSession();
  await rerank();
}

/** Only called with a model loaded (`view.client`). */
async function rerank() {
  const client = /** @type {RerankerClient} */ (view.client);
  if (!view.personalise) {
    renderUpstream("Personalisation is switched off: usual order.");
    return;
  }
  const started = performance.now();
  const ranking = await client.rerank(candidateInputs());
  const roundTrip = performance.now() - started;
  view.lastRanking = ranking;
  $("backend").textContent = ranking.backend === "webgpu" ? "WebGPU" : "CPU (WebAssembly)";
  $("latency").textContent = `${roundTrip.toFixed(1)} ms (model ${ranking.millis.toFixed(1)} ms)`;
  if (!ranking.personalised) {
    renderUpstream(`Usual order: ${ranking.reason ?? "nothing to personalise yet"}.`);
    return;
  }
  render(ranking.items, "personalised");
  setStatus(`Re-ranked ${ranking.items.length} products for your session in ${roundTrip.toFixed(1)} ms, on this device.`);
}

/** @param {boolean} on */
async function togglePersonalise(on) {
  view.personalise = on;
  if (!view.client) return;
  if (on && view.client.session().length) await rerank();
  else renderUpstream(on ? "Personalisation starts with your first click." : "Personalisation is switched off: usual order.");
}

async function resetSession() {
  if (view.client) await view.client.reset();
  view.focusId = null;
  renderSession();
  renderUpstream("Session cleared: usual order.");
}

/** @param {string} message */
function degrade(message) {
  document.body.dataset.state = "degraded";
  $("model-version").textContent = "none";
  $("backend").textContent = "off";
  checkbox().checked = false;
  checkbox().disabled = true;
  renderUpstream(message);
}

/** @param {string} message */
function renderUpstream(message) {
  render(view.candidates.map((c, i) => ({ itemId: c.id, upstreamRank: i, because: [] })), "upstream");
  setStatus(message);
}

/**
 * @param {Shown[]} items in the order to show
 * @param {"personalised" | "upstream"} order
 */
function render(items, order) {
  const grid = $("grid");
  const seen = new Set(view.client ? view.client.session().map((e) => String(e.itemId)) : []);
  const cards = items.map((item, position) => card(item, position, seen, order === "personalised"));
  grid.replaceChildren(...cards);
  grid.dataset.order = order;
  $("grid-note").textContent = order === "personalised" ? "— re-ranked for you" : "— usual order";
  view.renders += 1;
  document.body.dataset.renders = String(view.renders);
  if (view.focusId) {
    /** @type {HTMLElement | null} */ (grid.querySelector(`li[data-item-id="${CSS.escape(view.focusId)}"] button[data-action="open"]`))?.focus();
  }
}

/**
 * @param {Shown} item
 * @param {number} position
 * @param {Set<string>} seen ids in the session
 * @param {boolean} personalised
 */
function card(item, position, seen, personalised) {
  const c = view.byId.get(item.itemId);
  const li = el("li", { class: seen.has(item.itemId) ? "card seen" : "card" });
  li.dataset.itemId = item.itemId;
  li.dataset.upstreamRank = String(item.upstreamRank);
  const name = productName(item.itemId);
  li.append(
    el("button", { type: "button", class: "open", "data-action": "open", "aria-label": `View ${name}` }, name),
    el("span", { class: "meta" }, `${c?.category ? `Category ${c.category}` : "Uncategorised"} · ${priceBand(c?.price_level)}`),
  );
  if (personalised) {
    const moved = item.upstreamRank - position;
    const rank = el("span", { class: "rank" }, `#${position + 1} (was #${item.upstreamRank + 1}) `);
    if (moved !== 0) rank.append(el("span", { class: moved > 0 ? "up" : "down" }, moved > 0 ? `▲ ${moved}` : `▼ ${-moved}`));
    li.append(rank);
    if (item.because?.length) {
      li.append(el("span", { class: "because" }, `Because you viewed ${item.because.map((b) => productName(b.itemId)).join(" and ")}`));
    }
  }
  li.append(el("button", { type: "button", class: "cart", "data-action": "cart", "aria-label": `Add ${name} to the cart` }, "Add to cart"));
  return li;
}

function renderSession() {
  const events = view.client ? view.client.session() : [];
  $("session-events").replaceChildren(
    ...events.map((e) => {
      const li = el("li", {}, `${e.kind === "add_to_cart" ? "Added to cart" : e.kind === "purchase" ? "Bought" : "Viewed"} ${productName(e.itemId)}`);
      li.dataset.itemId = String(e.itemId);
      li.dataset.kind = e.kind;
      li.dataset.timestamp = String(e.timestamp);
      return li;
    }),
  );
}

const productName = (/** @type {string | number} */ id) => `Product ${id}`;
const priceBand = (/** @type {number | null | undefined} */ level) =>
  level == null ? "price unknown" : `price band ${level} of 15`;

/** @param {string} message */
function setStatus(message) {
  $("status").textContent = message;
}

/** @param {any} e */
function showError(e) {
  // A failed call never freezes the page: show the usual order and say why.
  renderUpstream(`Personalisation paused: ${describe(e)}. Usual order shown.`);
}

/** @param {any} e */
function describe(e) {
  return e?.code ? `${e.code}: ${e.message}` : (e?.message ?? String(e));
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
