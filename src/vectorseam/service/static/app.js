// The search page: plain DOM, no framework, no third-party code, so it works offline and is easy to audit.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("vectorseam-key") || "";
keyInput.addEventListener("change", () => { sessionStorage.setItem("vectorseam-key", keyInput.value); loadCollections(); });

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
  return h;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
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

function collectionPath(action) {
  return "/v1/collections/" + encodeURIComponent($("collection").value) + "/" + action;
}

async function loadCollections() {
  try {
    const data = await (await call("/v1/collections")).json();
    const select = $("collection");
    const previous = select.value || new URLSearchParams(location.search).get("collection");
    select.replaceChildren(...data.collections.map((c) => {
      const o = document.createElement("option");
      o.value = c.name;
      o.textContent = c.name + " (" + c.count + ")";
      return o;
    }));
    if (previous && data.collections.some((c) => c.name === previous)) select.value = previous;
    if (!data.collections.length) setStatus("No collections yet: run `make demo` or `vectorseam ingest FILE`.");
  } catch (e) { setStatus(e.message, true); }
}

function metaLine(metadata) {
  const p = document.createElement("div");
  p.className = "meta";
  for (const [k, v] of Object.entries(metadata)) {
    const c = document.createElement("code");
    c.textContent = k + "=" + (Array.isArray(v) ? v.join(",") : v);
    p.append(c, " ");
  }
  return p;
}

function showHits(title, hits) {
  $("results-title").textContent = title;
  const list = $("results");
  list.replaceChildren(...hits.map((h) => {
    const li = document.createElement("li");
    li.className = "hit";
    li.dataset.id = h.id;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = h.score.toFixed(3);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = h.text;
    const more = document.createElement("a");
    more.className = "more-like";
    more.href = "#";
    more.textContent = "more like this";
    more.addEventListener("click", (ev) => { ev.preventDefault(); moreLike(h.id); });
    li.append(score, text, more, metaLine(h.metadata));
    return li;
  }));
  setStatus(hits.length ? hits.length + " results" : "No results.");
}

function parseFilter() {
  const raw = $("filter").value.trim();
  if (!raw) return null;
  try { return JSON.parse(raw); } catch (e) { throw new Error("The filter is not valid JSON: " + e.message); }
}

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const body = { query: $("query").value, k: Number($("k").value) || 5, mode: $("mode").value,
                   filter: parseFilter() };
    if ($("mmr").checked) body.mmr = 0.5;
    setStatus("Searching…");
    const data = await (await call(collectionPath("search"), body)).json();
    showHits("Results for “" + body.query + "”", data.hits);
  } catch (e) { setStatus(e.message, true); }
});

async function moreLike(id) {
  try {
    setStatus("Finding records like " + id + "…");
    const body = { positive: [id], k: Number($("k").value) || 5, filter: parseFilter() };
    const data = await (await call(collectionPath("recommend"), body)).json();
    showHits("More like " + id, data.hits);
  } catch (e) { setStatus(e.message, true); }
}

function showCitations(citations) {
  $("citations").replaceChildren(...citations.map((c, i) => {
    const li = document.createElement("li");
    li.className = "citation";
    li.dataset.id = c.id;
    li.textContent = "[" + c.number + "] " + c.text;
    li.append(metaLine(c.metadata));
    return li;
  }));
}

$("ask-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const answer = $("answer");
  answer.textContent = "";
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
  } catch (e) { setStatus(e.message, true); }
});

loadCollections();
