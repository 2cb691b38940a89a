// A storefront built with Vite, with sessionrank installed from npm: the shop's list in its
// own order, re-ordered in a Web Worker after each click. Failures keep the shop's order.
import { RerankerClient, type SessionrankError } from "sessionrank/worker";
import type { CandidateInput } from "sessionrank";

interface CandidatePage {
  model_version: string | null;
  items: {
    id: string;
    text: string;
    category: string | null;
    price_level: number | null;
    vector: number[];
  }[];
}

const list = document.getElementById("products") as HTMLOListElement;
const status = document.getElementById("status") as HTMLElement;

const page: CandidatePage = await (await fetch("/v1/candidates?limit=40")).json();
const vectors = new Map(page.items.map((p) => [p.id, p.vector]));
const candidates: CandidateInput[] = page.items.map((p) => ({
  itemId: p.id,
  vector: p.vector,
  content: { text: p.text, category: p.category ?? undefined, priceLevel: p.price_level ?? undefined },
}));
show(page.items.map((p) => p.id));

let reranker: RerankerClient | null = null;
try {
  if (!page.model_version) throw new Error("no model is live");
  const version = encodeURIComponent(page.model_version);
  reranker = await RerankerClient.load(`/v1/models/${version}/browser/manifest.json`, {
    timeout: 10_000,
    onStatus: (s) => console.info(`sessionrank backend: ${s.backend}`, s.reason ?? ""),
  });
  document.body.dataset.state = "ready";
  status.textContent = `Personalised by model ${reranker.modelVersion}.`;
} catch (e) {
  document.body.dataset.state = "degraded";
  status.textContent = `Personalisation is off (${(e as SessionrankError).code ?? e}); usual order.`;
}

list.addEventListener("click", async (e) => {
  const id = (e.target as Element).closest("li")?.dataset.itemId;
  if (!id || !reranker) return;
  try {
    await reranker.observe({ itemId: id, kind: "click", vector: vectors.get(id) });
    const ranking = await reranker.rerank(candidates);
    show(ranking.items.map((i) => i.itemId));
    status.textContent = `Re-ranked in ${ranking.millis.toFixed(1)} ms on this device.`;
  } catch (err) {
    status.textContent = `Personalisation paused (${(err as SessionrankError).code}).`;
  }
});

function show(ids: string[]) {
  list.replaceChildren(
    ...ids.map((id) => {
      const li = document.createElement("li");
      li.dataset.itemId = id;
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `Product ${id}`;
      li.append(b);
      return li;
    }),
  );
  document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
}
