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
// The merchandising panel sets the shop's rules (`Rules` of the package), applied with the
// model on every re-rank, live: pinned products, hiding out-of-stock products, diversity, the
// weight of personalisation against the shop's own order, a limit on how far a product may
// move, a per-category cap. Each card says why it is where it is: the session products that
// raised it and what the rules did. The sample catalog has no stock data, so the demo marks
// every seventh product of the page out of stock (`OUT_OF_STOCK_EVERY`).
//
// URL parameters (all optional): `model` — a manifest URL instead of the candidate page's
// model; `limit` — candidates on the page (default 60).
//
// Everything the end-to-end test reads is in the DOM: `body[data-state]` (loading, ready,
// degraded), `body[data-renders]` (grid renders so far), `#grid[data-order]` (personalised or
// upstream), `#grid[data-rules]` (the rules of the last re-rank, JSON), `#grid[data-unavailable]`
// (the ids marked out of stock, JSON) and `li[data-item-id]` in visible order; the session panel
// lists the events with their timestamps.

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
 * @typedef {import("../pkg/sessionrank.js").Rules} Rules
 * @typedef {import("../pkg/sessionrank.js").Effects} Effects
 * @typedef {import("../pkg/sessionrank.js").HiddenItem} HiddenItem
 * @typedef {Pick<import("../pkg/sessionrank.js").RankedItem, "itemId" | "upstreamRank" | "because">
 *   & { effects?: Effects }} Shown
 */

const params = new URLSearchParams(location.search);
const limit = params.get("limit") ?? "60";
/** An element of index.html (every id this script uses is there). */
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const checkbox = () => /** @type {HTMLInputElement} */ ($("personalise"));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));

/** The demo marks products `3, 3 + N, 3 + 2N, …` of the page out of stock. */
const OUT_OF_STOCK_EVERY = 7;
/** At most this many pinned products (slots 1, 2, 3 in the order pinned). */
const MAX_PINS = 3;
/** The category cap of the panel: at most `max` per category in the first `top`. */
const CATEGORY_CAP = { max: 2, top: 8 };

/** The merchandising panel's state; these defaults change nothing. */
const DEFAULT_CONTROLS = () => ({
  /** @type {string[]} */
  pins: [],
  hideOutOfStock: false,
  diversity: 0,
  blend: 1,
  /** @type {number | null} */
  maxMove: null,
  cap: false,
});

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
  /** @type {Set<string>} ids marked out of stock */
  outOfStock: new Set(),
  controls: DEFAULT_CONTROLS(),
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
    if (button.dataset.action === "pin") {
      view.focusId = id;
      togglePin(id);
      return;
    }
    enqueue(() => act(id, button.dataset.action === "cart" ? "add_to_cart" : "click"));
  });
  wireControls();

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
  view.outOfStock = new Set(view.candidates.filter((_, i) => i % OUT_OF_STOCK_EVERY === 3).map((c) => c.id));
  $("grid").dataset.unavailable = JSON.stringify([...view.outOfStock]);
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
  if (view.client.session().length || rulesActive()) {
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
 *  that would arrive without one, and for the category the rules count), and availability. */
function candidateInputs() {
  return view.candidates.map((c) => ({
    itemId: c.id,
    vector: c.vector,
    content: { text: c.text ?? "", category: c.category ?? undefined, priceLevel: c.price_level ?? undefined },
    available: !view.outOfStock.has(c.id),
  }));
}

/** The panel's rules, as `rerank` takes them. Out-of-stock products are passed with
 *  `available: false`; the rules hide them only when the box is ticked. */
function currentRules() {
  const c = view.controls;
  /** @type {Rules} */
  const rules = { hideUnavailable: c.hideOutOfStock };
  if (c.pins.length) rules.pins = Object.fromEntries(c.pins.map((id, slot) => [id, slot]));
  if (c.diversity > 0) rules.diversity = c.diversity;
  if (c.blend < 1) rules.blend = c.blend;
  if (c.maxMove != null) rules.maxDisplacement = c.maxMove;
  if (c.cap) rules.categoryCap = CATEGORY_CAP;
  return rules;
}

/** Whether the panel changes anything. */
function rulesActive() {
  const c = view.controls;
  return c.pins.length > 0 || c.hideOutOfStock || c.diversity > 0 || c.blend < 1 || c.maxMove != null || c.cap;
}

/** The panel's inputs → `view.controls`, each change re-ranking at once. */
function wireControls() {
  const changed = () => {
    const c = view.controls;
    c.hideOutOfStock = input("hide-out-of-stock").checked;
    c.diversity = Number(input("diversity").value);
    c.blend = Number(input("blend").value);
    const move = /** @type {HTMLSelectElement} */ ($("max-move")).value;
    c.maxMove = move === "" ? null : Number(move);
    c.cap = input("category-cap").checked;
    showControls();
    scheduleRerank();
  };
  for (const id of ["hide-out-of-stock", "category-cap", "max-move"]) $(id).addEventListener("change", changed);
  for (const id of ["diversity", "blend"]) $(id).addEventListener("input", changed);
  $("reset-rules").addEventListener("click", () => {
    view.controls = DEFAULT_CONTROLS();
    input("hide-out-of-stock").checked = false;
    input("diversity").value = "0";
    input("blend").value = "1";
    /** @type {HTMLSelectElement} */ ($("max-move")).value = "";
    input("category-cap").checked = false;
    showControls();
    scheduleRerank();
  });
  showControls();
}

/** The panel's current values in words. */
function showControls() {
  const c = view.controls;
  $("diversity-value").textContent = c.diversity > 0 ? `λ ${c.diversity.toFixed(2)}` : "off";
  $("blend-value").textContent = `${Math.round(c.blend * 100)}%`;
  $("pins").textContent = c.pins.length ? c.pins.map(productName).join(", ") : "none";
}

/** @param {string} id pin it after the other pins, or unpin it */
function togglePin(id) {
  const pins = view.controls.pins;
  const at = pins.indexOf(id);
  if (at >= 0) pins.splice(at, 1);
  else {
    pins.push(id);
    if (pins.length > MAX_PINS) pins.shift();
  }
  showControls();
  scheduleRerank();
}

// A burst of slider events re-ranks once with the latest values: at most one re-rank waits.
let rerankWaiting = false;
function scheduleRerank() {
  if (!view.client || rerankWaiting) return;
  rerankWaiting = true;
  enqueue(async () => {
    rerankWaiting = false;
    if (!view.client) return;
    if (view.client.session().length || rulesActive() || !view.personalise) await rerank();
    else renderUpstream("Personalisation starts with your first click.");
  });
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

/** Only called with a model loaded (`view.client`). With personalisation switched off the
 *  panel's rules still apply, to the shop's order (`blend: 0`). */
async function rerank() {
  const client = /** @type {RerankerClient} */ (view.client);
  if (!view.personalise && !rulesActive()) {
    renderUpstream("Personalisation is switched off: usual order.");
    return;
  }
  const rules = view.personalise ? currentRules() : { ...currentRules(), blend: 0 };
  const started = performance.now();
  const ranking = await client.rerank(candidateInputs(), rules);
  const roundTrip = performance.now() - started;
  view.lastRanking = ranking;
  $("grid").dataset.rules = JSON.stringify(rules);
  $("backend").textContent = ranking.backend === "webgpu" ? "WebGPU" : "CPU (WebAssembly)";
  $("latency").textContent = `${roundTrip.toFixed(1)} ms (model ${ranking.millis.toFixed(1)} ms)`;
  showHidden(ranking.hidden);
  const withRules = rulesActive() ? " with the shop's rules" : "";
  if (!view.personalise) {
    render(ranking.items, "upstream");
    setStatus(`Personalisation is switched off: usual order${withRules}.`);
    return;
  }
  if (!ranking.personalised) {
    render(ranking.items, "upstream");
    setStatus(`Usual order${withRules}: ${ranking.reason ?? "nothing to personalise yet"}.`);
    return;
  }
  render(ranking.items, "personalised");
  setStatus(`Re-ranked ${ranking.items.length} products for your session${withRules} in ${roundTrip.toFixed(1)} ms, on this device.`);
}

/** @param {HiddenItem[]} hidden */
function showHidden(hidden) {
  const n = hidden.length;
  $("hidden-note").textContent = n ? `${n} product${n === 1 ? "" : "s"} hidden: out of stock.` : "";
}

/** @param {boolean} on */
async function togglePersonalise(on) {
  view.personalise = on;
  if (!view.client) return;
  if (on && !view.client.session().length && !rulesActive()) renderUpstream("Personalisation starts with your first click.");
  else await rerank();
}

async function resetSession() {
  if (view.client) await view.client.reset();
  view.focusId = null;
  renderSession();
  if (view.client && rulesActive()) await rerank();
  else renderUpstream("Session cleared: usual order.");
}

/** @param {string} message */
function degrade(message) {
  document.body.dataset.state = "degraded";
  $("model-version").textContent = "none";
  $("backend").textContent = "off";
  checkbox().checked = false;
  checkbox().disabled = true;
  // The rules run in the package: without a model there is nothing to apply them.
  for (const node of document.querySelectorAll(".controls input, .controls select, .controls button")) {
    /** @type {HTMLInputElement} */ (node).disabled = true;
  }
  renderUpstream(message);
}

/** @param {string} message */
function renderUpstream(message) {
  render(view.candidates.map((c, i) => ({ itemId: c.id, upstreamRank: i, because: [] })), "upstream");
  showHidden([]);
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
  const out = view.outOfStock.has(item.itemId);
  const li = el("li", { class: `card${seen.has(item.itemId) ? " seen" : ""}${out ? " out" : ""}` });
  li.dataset.itemId = item.itemId;
  li.dataset.upstreamRank = String(item.upstreamRank);
  const { name, meta } = product(item.itemId);
  li.append(
    el("button", { type: "button", class: "open", "data-action": "open", "aria-label": `View ${name}` }, name),
    el("span", { class: "meta" }, c?.price_level == null ? meta : `${meta} · ${priceBand(c.price_level)}`),
  );
  if (out) li.append(el("span", { class: "stock" }, "Out of stock"));
  if (personalised) {
    const moved = item.upstreamRank - position;
    const rank = el("span", { class: "rank" }, `#${position + 1} (was #${item.upstreamRank + 1}) `);
    if (moved !== 0) rank.append(el("span", { class: moved > 0 ? "up" : "down" }, moved > 0 ? `▲ ${moved}` : `▼ ${-moved}`));
    li.append(rank);
    if (item.because?.length) {
      li.append(el("span", { class: "because" }, `Because you viewed ${item.because.map((b) => productName(b.itemId)).join(" and ")}`));
    }
  }
  const notes = ruleNotes(item.effects ?? {});
  if (notes.length) li.append(el("span", { class: "rules-note" }, notes.join(" · ")));
  const pinned = view.controls.pins.includes(item.itemId);
  const actions = el("span", { class: "actions" });
  actions.append(
    el("button", { type: "button", class: "cart", "data-action": "cart", "aria-label": `Add ${name} to the cart` }, "Add to cart"),
    el("button", { type: "button", class: "pin", "data-action": "pin", "aria-pressed": String(pinned),
      "aria-label": `${pinned ? "Unpin" : "Pin"} ${name} (merchandiser)` }, pinned ? "Unpin" : "Pin"),
  );
  li.append(actions);
  return li;
}

/**
 * What the shop's rules did to a product, in short sentences (the package's `explanation`
 * says the same with item ids; the page names products).
 * @param {Effects} e
 */
function ruleNotes(e) {
  /** @type {string[]} */
  const notes = [];
  if (e.pinned != null) notes.push(`Pinned to #${e.pinned + 1} by the shop`);
  if (e.boosted != null) notes.push("Promoted by the shop");
  if (e.buried != null) notes.push("Demoted by the shop");
  if (e.diversity === "up") notes.push("Shown higher to vary the list");
  if (e.diversity === "down") notes.push("Moved down to vary the list");
  if (e.held?.toward === "up") notes.push(`Kept within ${e.held.limit} places of its usual position`);
  if (e.held?.toward === "down") notes.push(`Would rank higher, but may move at most ${e.held.limit} places`);
  if (e.capped) notes.push(`Moved down: at most ${e.capped.max} from category ${e.capped.category} in the first ${e.capped.top}`);
  return notes;
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

const productName = (/** @type {string | number} */ id) => product(id).name;

/**
 * What a card says about an item. The catalog's `text` is what the shop sent: in the Amazon
 * Beauty sample of `scripts/demo`, brand and category path (ending in `category`), then words of
 * the title. A text without letters (Diginetica's titles are hashed) shows the id.
 * @param {string | number} id
 * @returns {{ name: string, meta: string }}
 */
function product(id) {
  const c = view.byId.get(String(id));
  const text = (c?.text ?? "").trim();
  const category = c?.category ?? "";
  if (!/\p{L}/u.test(text)) {
    return { name: `Product ${id}`, meta: category ? `Category ${category}` : "Uncategorised" };
  }
  // The path ends with `category`, which may also end an earlier step ("Fluids & Lotions",
  // then "Lotions"): its last occurrence that the (lower-case) title follows, else its last.
  let at = -1;
  let titled = -1;
  for (let i = category ? text.indexOf(category) : -1; i >= 0; i = text.indexOf(category, i + 1)) {
    at = i;
    if (!/^\s*\p{Lu}/u.test(text.slice(i + category.length))) titled = i;
  }
  if (titled >= 0) at = titled;
  const path = at >= 0 ? text.slice(0, at + category.length) : category;
  const title = (at >= 0 ? text.slice(at + category.length).trim() : text) || path;
  return { name: title[0].toUpperCase() + title.slice(1), meta: path || "Uncategorised" };
}

const priceBand = (/** @type {number} */ level) => `price band ${level} of 15`;

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
