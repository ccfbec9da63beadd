// The search page: plain DOM, no framework, no third-party code, so it works offline and is easy to audit.
//
// Safety: every text from the server (record texts, ids, metadata, errors) reaches the page through
// textContent or an attribute, never innerHTML, so a stored "<img onerror=...>" is shown, not run; the
// server's Content-Security-Policy allows only this script besides.
// State: the search (q, mode, k, diverse, filter), a "more like this" (like) and the collection live in
// the URL, so a search can be bookmarked and shared, and back/forward step through searches.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("vectorseam-key") || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("vectorseam-key", keyInput.value);
  start();
});

let collections = [];   // from /v1/collections
let overview = null;    // from /v1/collections/{name}/overview
let lastHits = [];      // what the results list shows (facet counts among them when the server has none)

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
  return h;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function call(path, body) {
  const resp = await fetch(path, body === undefined ? { headers: headers() }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    if (resp.status === 401) { $("key-box").open = true; }
    throw new Error(message);
  }
  return resp;
}

function collection() { return $("collection").value; }

function collectionPath(action) {
  return "/v1/collections/" + encodeURIComponent(collection()) + "/" + action;
}

// ---- texts, dates and scores as people read them ------------------------------------------------

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: "\u00a0" };

// Stored texts are plain text that may carry HTML from their source (the Amazon reviews hold
// "<br />"): line breaks become line breaks and entities their characters; any other tag stays
// visible as the characters it is. The result is only ever assigned to textContent.
function readableText(raw) {
  return String(raw)
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
      if (name[0] === "#") {
        const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return ENTITIES[name.toLowerCase()] ?? whole;
    });
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?)?$/;

function formatInstant(date) {
  const iso = date.toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso.slice(0, 16).replace("T", " ") + " UTC";
}

// A metadata value as shown: times (ISO strings, and numbers of a field the overview calls a Unix
// time) as dates; the raw value stays in the tooltip.
function displayValue(field, value) {
  const kind = overview && (overview.fields.find((f) => f.name === field) || {}).kind;
  if (typeof value === "number" && (kind === "unix_time" || kind === "unix_time_ms")) {
    return { text: formatInstant(new Date(kind === "unix_time" ? value * 1000 : value)),
             title: value + (kind === "unix_time" ? " (Unix time, seconds)" : " (Unix time, milliseconds)"),
             date: true };
  }
  if (typeof value === "string" && ISO_TIME.test(value)) {
    // Date() reads milliseconds at most; ISO times may carry microseconds
    const d = new Date(value.length === 10 ? value + "T00:00:00Z" : value.replace(/(\.\d{3})\d+/, "$1"));
    if (!isNaN(d)) return { text: formatInstant(d), title: value, date: true };
  }
  return { text: Array.isArray(value) ? value.join(", ") : String(value), title: "", date: false };
}

function metricLabel(metric) {
  return { cosine: "cosine similarity", dot: "inner product", euclidean: "negated L2 distance" }[metric] || metric;
}

// What a score means, from the response's mode (and the collection's metric for vector scores).
function scoreKind(mode, responseKind) {
  if (responseKind) return { short: responseKind, long: responseKind };
  const metric = (collections.find((c) => c.name === collection()) || {}).metric || "cosine";
  if (mode === "bm25") return { short: "BM25", long: "BM25 keyword score (higher is better, unbounded)" };
  if (mode === "hybrid") return { short: "RRF", long: "reciprocal rank fusion of semantic and keyword ranks (about 0.01-0.03)" };
  if (mode && mode.startsWith("recommend")) {
    return { short: { cosine: "cos", dot: "dot", euclidean: "-L2" }[metric] || metric,
             long: metricLabel(metric) + " to the example records" };
  }
  return { short: { cosine: "cos", dot: "dot", euclidean: "-L2" }[metric] || metric,
           long: metricLabel(metric) + " (semantic search)" };
}

// ---- the URL: what is searched, shareable and bookmarkable ------------------------------------

function stateFromForm(extra) {
  const s = { collection: collection(), q: $("query").value.trim(), mode: $("mode").value, k: $("k").value,
              filter: $("filter").value.trim(), diverse: $("mmr").checked ? "1" : "",
              doc: $("per-doc").checked && documentGrouping() ? "1" : "" };
  return Object.assign(s, extra || {});
}

function urlOf(state) {
  const params = new URLSearchParams();
  for (const key of ["collection", "q", "like", "mode", "k", "diverse", "doc", "filter"]) {
    if (state[key] && !(key === "mode" && state.mode === "dense") && !(key === "k" && state.k === "5")) {
      params.set(key, state[key]);
    }
  }
  const qs = params.toString();
  return location.pathname + (qs ? "?" + qs : "");
}

function remember(state) {
  const url = urlOf(state);
  if (url !== location.pathname + location.search) history.pushState(state, "", url);
}

function applyURL() {
  const p = new URLSearchParams(location.search);
  $("query").value = p.get("q") || "";
  $("mode").value = ["dense", "hybrid", "bm25"].includes(p.get("mode")) ? p.get("mode") : "dense";
  $("k").value = p.get("k") || "5";
  $("filter").value = p.get("filter") || "";
  $("mmr").checked = p.get("diverse") === "1";
  $("per-doc").checked = p.get("doc") === "1";
  return p;
}

// ---- results -----------------------------------------------------------------------------------

function metaLine(metadata) {
  const p = el("div", "meta");
  for (const [k, v] of Object.entries(metadata)) {
    const shown = displayValue(k, v);
    const c = el("code", shown.date ? "date" : "", k + "=" + shown.text);
    if (shown.title) c.title = shown.title;
    p.append(c, " ");
  }
  return p;
}

function highlighted(h) {
  // spans are [start, end) offsets into the snippet: marked up here, with text nodes only
  const p = el("p", "snippet");
  const text = h.snippet || "";
  let at = 0;
  p.append(el("span", "snippet-label", "matched: "));
  if (h.offset) p.append("… ");
  for (const [a, b] of h.spans || []) {
    p.append(readableText(text.slice(at, a)), el("mark", "", readableText(text.slice(a, b))));
    at = b;
  }
  p.append(readableText(text.slice(at)));
  return p;
}

function showHits(title, data) {
  const hits = data.hits || [];
  lastHits = hits;
  const kind = scoreKind(data.mode, data.score_kind);
  $("results-title").textContent = title;
  $("score-note").textContent = hits.length ? "Scores: " + kind.long + "." : "";
  $("results").replaceChildren(...hits.map((h) => {
    const li = el("li", "hit");
    li.dataset.id = h.id;
    const head = el("div", "hit-head");
    const score = el("span", "score", h.score.toFixed(Math.abs(h.score) < 0.1 ? 4 : 3));
    score.title = kind.long;
    const label = el("span", "score-kind", kind.short);
    label.title = kind.long;
    const rid = el("span", "rid", "id " + h.id);
    const more = el("a", "more-like", "more like this");
    more.href = "?" + new URLSearchParams({ collection: collection(), like: h.id }).toString();
    more.addEventListener("click", (ev) => { ev.preventDefault(); moreLike(h.id, true); });
    head.append(label, score, rid, more);
    li.append(head, el("p", "text", readableText(h.text)));
    const marks = h.highlight || (data.highlights || {})[h.id];
    if (marks && marks.spans && marks.spans.length) li.append(highlighted(marks));
    li.append(metaLine(h.metadata));
    return li;
  }));
  showFacets(data.facets);
  setStatus(hits.length ? hits.length + " results" : "No results.");
}

// An error replaces what was shown: stale results under a new query would be read as its answer.
function showFailure(title, error) {
  lastHits = [];
  $("results-title").textContent = title;
  $("score-note").textContent = "";
  $("results").replaceChildren();
  $("facets-box").hidden = true;
  setStatus(error.message, true);
}

function parseFilter() {
  const raw = $("filter").value.trim();
  if (!raw) return null;
  try { return JSON.parse(raw); } catch (e) { throw new Error("The filter is not valid JSON: " + e.message); }
}

// ---- facets: counts of each categorical field's values, a click narrows the filter -------------

// chunking's bookkeeping (which chunk of how many, of which source): nothing a reader narrows by
const CHUNK_FIELDS = ["chunk", "chunks", "source_id"];

function facetFields() {
  if (!overview) return [];
  return overview.fields.filter((f) => !CHUNK_FIELDS.includes(f.name)
                                       && ["string", "bool", "number"].includes(f.kind) && f.distinct <= 25
                                       && f.distinct > 1 && !f.distinct_capped).map((f) => f.name).slice(0, 6);
}

function supports(option) { return Boolean(overview && overview.search_options.includes(option)); }

function serverFacets() { return supports("facets"); }

// A chunked collection (records carry source_id): the page can show each document once, by its best chunk.
function documentGrouping() {
  return supports("group_by") && overview.fields.some((f) => f.name === "source_id");
}

function countAmongHits(fields) {
  const out = {};
  for (const field of fields) {
    const counts = new Map();
    for (const h of lastHits) {
      const v = h.metadata[field];
      for (const item of Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]) {
        counts.set(item, (counts.get(item) || 0) + 1);
      }
    }
    out[field] = [...counts.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
      .map(([value, count]) => ({ value, count }));
  }
  return out;
}

function showFacets(fromServer) {
  const fields = facetFields();
  const facets = fromServer && Object.keys(fromServer).length ? fromServer : countAmongHits(fields);
  const names = Object.keys(facets).filter((f) => facets[f] && facets[f].length);
  $("facets-box").hidden = !names.length || !lastHits.length;
  $("facets-note").textContent = fromServer && Object.keys(fromServer).length
    ? "Counts among every record the search's filter admits." : "Counts among the results shown.";
  $("facets").replaceChildren(...names.map((field) => {
    const box = el("div", "facet");
    box.dataset.field = field;
    box.append(el("h3", "", field));
    const list = el("ul");
    for (const { value, count } of facets[field]) {
      const li = el("li");
      const b = el("button", "facet-value", displayValue(field, value).text);
      b.type = "button";
      b.dataset.value = JSON.stringify(value);
      b.title = "only records with " + field + " = " + JSON.stringify(value);
      b.addEventListener("click", () => narrow(field, value));
      li.append(b, " ", el("span", "count", String(count)));
      list.append(li);
    }
    box.append(list);
    return box;
  }));
}

function narrow(field, value) {
  let current = {};
  try { current = parseFilter() || {}; } catch (e) { current = {}; }
  if (typeof current !== "object" || Array.isArray(current)) current = {};
  current[field] = value;
  $("filter").value = JSON.stringify(current);
  runSearch(true);
}

// ---- search, more like this, ask -------------------------------------------------------------

async function runSearch(push) {
  const state = stateFromForm();
  if (!state.q) return;
  if (push) remember(state);
  const body = { query: state.q, k: Number(state.k) || 5, mode: state.mode };
  try {
    body.filter = parseFilter();
    if (state.diverse) body.mmr = 0.5;
    if (serverFacets() && facetFields().length) { body.facets = facetFields(); body.facet_limit = 8; }
    if (supports("highlight")) body.highlight = true;
    if (state.doc && documentGrouping()) body.group_size = 1;  // one hit per document (source_id)
    setStatus("Searching…");
    const data = await (await call(collectionPath("search"), body)).json();
    showHits("Results for “" + state.q + "”", data);
  } catch (e) { showFailure("Search failed: “" + state.q + "”", e); }
}

async function moreLike(id, push) {
  if (push) remember(Object.assign(stateFromForm(), { q: "", like: id }));
  try {
    setStatus("Finding records like " + id + "…");
    const body = { positive: [id], k: Number($("k").value) || 5, filter: parseFilter() };
    const data = await (await call(collectionPath("recommend"), body)).json();
    showHits("More like " + id, data);
  } catch (e) { showFailure("No records like " + id, e); }
}

function showCitations(citations) {
  // numbered once: the [n] the answer uses, in a list without its own numbers
  $("citations").replaceChildren(...citations.map((c) => {
    const li = el("li", "citation");
    li.dataset.id = c.id;
    li.append(el("span", "cite-n", "[" + c.number + "]"), " ", el("span", "rid", "id " + c.id), " ",
              el("span", "text", readableText(c.text)), metaLine(c.metadata));
    return li;
  }));
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const answer = $("answer");
  answer.textContent = "";
  answer.className = "";
  $("citations").replaceChildren();
  $("answer-box").hidden = false;
  try {
    setStatus("Reading…");
    const resp = await call(collectionPath("ask"), { question: $("question").value, k: 5,
                                                     filter: parseFilter(), stream: true });
    // Server-sent events over a POST response: read the stream and split it into events.
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = (chunk.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((chunk.match(/^data: (.*)$/m) || [])[1] || "null");
        if (event === "passages") showCitations(data);
        else if (event === "token") answer.textContent += data;
        else if (event === "answer") {
          answer.textContent = data.answer;
          showCitations(data.citations.length ? data.citations : data.passages);
        } else if (event === "error") throw new Error(data.message);
      }
    }
    setStatus("Answered.");
  } catch (e) {
    answer.textContent = "No answer: " + e.message;
    answer.className = "error";
    $("citations").replaceChildren();
    setStatus(e.message, true);
  }
});

$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(true); });

// ---- the collection: overview, and what changing it does ---------------------------------------

function rangeText(f) {
  if (f.kind === "number") return f.low === f.high ? String(f.low) : f.low + " – " + f.high;
  if (f.kind === "time") return displayValue(f.name, f.low).text + " – " + displayValue(f.name, f.high).text;
  if (f.kind === "unix_time" || f.kind === "unix_time_ms") {
    return displayValue(f.name, f.low).text + " – " + displayValue(f.name, f.high).text;
  }
  const top = f.top.map((t) => displayValue(f.name, t.value).text + " (" + t.count + ")").join(", ");
  return (f.distinct_capped ? "over " : "") + f.distinct + " distinct" + (top ? ": " + top : "");
}

async function loadOverview() {
  overview = null;
  $("per-doc-box").hidden = true;
  $("fields").hidden = true;
  if (!collection()) { $("overview-summary").textContent = ""; return; }
  try {
    const o = await (await call(collectionPath("overview"))).json();
    overview = o;
    $("overview-summary").textContent = o.collection + ": " + o.count + " records, " + o.dimension + "-d "
      + o.metric + " vectors, embedder " + (o.embedder || "unknown") + ".";
    $("fields").querySelector("tbody").replaceChildren(...o.fields.map((f) => {
      const tr = el("tr");
      tr.dataset.field = f.name;
      const kind = { unix_time: "date (Unix time)", unix_time_ms: "date (Unix ms)", time: "date" }[f.kind] || f.kind;
      tr.append(el("th", "", f.name), el("td", "", kind + (f.is_list ? " list" : "")),
                el("td", "", rangeText(f) + (f.present < o.count ? " · in " + f.present + " records" : "")));
      tr.firstChild.scope = "row";
      return tr;
    }));
    $("fields").hidden = !o.fields.length;
    $("per-doc-box").hidden = !documentGrouping();
  } catch (e) { $("overview-summary").textContent = "Overview unavailable: " + e.message; }
}

$("collection").addEventListener("change", async () => {
  clearMap();
  lastHits = [];
  $("results").replaceChildren();
  $("results-title").textContent = "Results";
  $("score-note").textContent = "";
  $("facets-box").hidden = true;
  remember({ collection: collection() });
  await loadOverview();
});

async function loadCollections(wanted) {
  const data = await (await call("/v1/collections")).json();
  collections = data.collections;
  const select = $("collection");
  select.replaceChildren(...collections.map((c) => {
    const o = el("option", "", c.name + " (" + c.count + ")");
    o.value = c.name;
    return o;
  }));
  if (wanted && collections.some((c) => c.name === wanted)) select.value = wanted;
  if (!collections.length) setStatus("No collections yet: run `make demo` or `vectorseam ingest FILE`.");
}

// ---- the map of clusters -------------------------------------------------------------------------

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94"];

function clearMap() {
  $("map").replaceChildren();
  $("map-legend").replaceChildren();
  $("map-wrap").hidden = true;
  $("map-status").textContent = "";
}

function showTip(point, event) {
  const tip = $("map-tip");
  tip.replaceChildren(el("b", "", "id " + point.id + " · cluster " + point.cluster),
                      el("span", "", readableText(point.text)));
  tip.hidden = false;
  const box = $("map-wrap").getBoundingClientRect();
  const x = (event.clientX || box.left + 10) - box.left + 12;
  const y = (event.clientY || box.top + 10) - box.top + 12;
  tip.style.left = Math.min(x, box.width - 260) + "px";
  tip.style.top = y + "px";
}

function drawMap(m) {
  const svg = $("map");
  const W = 640, H = 440, pad = 14;
  svg.replaceChildren();
  for (const p of m.points) {
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("class", "pt");
    c.setAttribute("cx", (pad + p.x * (W - 2 * pad)).toFixed(1));
    c.setAttribute("cy", (H - pad - p.y * (H - 2 * pad)).toFixed(1));
    c.setAttribute("r", m.points.length > 1500 ? "2.5" : "4.5");
    c.setAttribute("fill", PALETTE[p.cluster % PALETTE.length]);
    c.setAttribute("tabindex", "0");
    c.dataset.id = p.id;
    c.dataset.cluster = String(p.cluster);
    c.setAttribute("aria-label", "record " + p.id + ", cluster " + p.cluster);
    c.addEventListener("mouseenter", (ev) => showTip(p, ev));
    c.addEventListener("focus", (ev) => showTip(p, ev));
    c.addEventListener("mouseleave", () => { $("map-tip").hidden = true; });
    c.addEventListener("blur", () => { $("map-tip").hidden = true; });
    c.addEventListener("click", () => moreLike(p.id, true));
    c.addEventListener("keydown", (ev) => { if (ev.key === "Enter") moreLike(p.id, true); });
    svg.append(c);
  }
  $("map-legend").replaceChildren(...m.clusters.map((c) => {
    const li = el("li", "cluster");
    li.dataset.cluster = String(c.index);
    const swatch = el("span", "swatch");
    swatch.style.background = PALETTE[c.index % PALETTE.length];
    li.append(swatch, el("span", "", c.index + ": " + c.label + " (" + c.size + ")"));
    li.title = c.terms.join(", ");
    li.addEventListener("click", () => {
      li.classList.toggle("off");
      for (const pt of svg.querySelectorAll("circle.pt[data-cluster='" + c.index + "']")) {
        pt.classList.toggle("hidden", li.classList.contains("off"));
      }
    });
    return li;
  }));
  $("map-wrap").hidden = false;
  $("map-status").textContent = m.points.length + " records" + (m.sampled ? " (a sample of " + m.total + ")" : "")
    + " in " + m.k + " clusters" + (m.silhouette !== null ? ", silhouette " + m.silhouette.toFixed(3) : "")
    + "; " + (m.projection === "tsne" ? "t-SNE" : "PCA") + (m.cached ? ", from the cache" : "") + ".";
}

$("map-btn").addEventListener("click", async () => {
  $("map-status").textContent = "Clustering and projecting (seconds the first time)…";
  $("map-status").className = "note";
  try {
    drawMap(await (await call(collectionPath("map"))).json());
  } catch (e) {
    clearMap();
    $("map-status").textContent = "No map: " + e.message;
    $("map-status").className = "note error";
  }
});

// ---- start, and back/forward ------------------------------------------------------------------------

async function showFromURL() {
  const p = applyURL();
  if (p.get("collection") && p.get("collection") !== collection()
      && collections.some((c) => c.name === p.get("collection"))) {
    $("collection").value = p.get("collection");
    clearMap();
    await loadOverview();
  }
  if (p.get("q")) await runSearch(false);
  else if (p.get("like")) await moreLike(p.get("like"), false);
  else {
    lastHits = [];
    $("results").replaceChildren();
    $("results-title").textContent = "Results";
    $("score-note").textContent = "";
    $("facets-box").hidden = true;
    setStatus("");
  }
}

window.addEventListener("popstate", () => { showFromURL(); });

async function start() {
  try {
    const p = applyURL();
    await loadCollections(p.get("collection"));
    await loadOverview();
    if (p.get("q")) await runSearch(false);
    else if (p.get("like")) await moreLike(p.get("like"), false);
  } catch (e) { setStatus(e.message, true); }
}

start();
