// ATMP-QA chat page: streams answers from /v1/chat/completions and opens cited passages.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const log = $("#log");
const form = $("#ask");
const input = $("#question");
const dialog = $("#passage");
const MARKER = /\[(\d+)\]/g;

function escapeHtml(text) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(text).replace(/[&<>"']/g, (c) => entities[c]);
}

// The answer text with each [n] marker turned into a chip that opens source n.
function renderAnswer(text) {
  return escapeHtml(text).replace(
    MARKER,
    (_, n) => `<button type="button" class="chip" data-n="${n}" aria-label="Open source ${n}">${n}</button>`,
  );
}

function sourceLabel(c) {
  return `${c.short_title || c.title}, ${c.section}` + (c.page ? `, p. ${c.page}` : "");
}

// Uploaded documents are not official texts: their sources say so.
const UPLOADED = "uploaded";
function originBadge(c) {
  return c.origin === UPLOADED ? ' <span class="origin">uploaded, not an official text</span>' : "";
}

// Only http(s) links reach an href (never javascript:, data: or file:).
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\/[^\s]+$/i.test(url) ? url : null;
}

// Yields the data of each server-sent event of a streaming response.
async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data) yield data;
    }
  }
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    // /v1/* errors come in OpenAI's envelope, {"error": {"message": …}}
    const message = typeof body.detail === "string" ? body.detail : body.error?.message;
    return typeof message === "string" ? message : `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function addTurn(question) {
  $("#intro")?.remove();
  const asked = document.createElement("p");
  asked.className = "question";
  asked.textContent = question;
  const turn = document.createElement("article");
  turn.className = "answer";
  turn.dataset.state = "streaming";
  turn.innerHTML =
    '<p class="badge" hidden>Not answered by the indexed documents</p>' +
    '<div class="text"><span class="typing">Searching the documents…</span></div>' +
    '<div class="sources" hidden></div>';
  turn.citations = new Map();
  log.append(asked, turn);
  return turn;
}

function showSources(turn, final, text) {
  const cited = new Set([...text.matchAll(MARKER)].map((m) => Number(m[1])));
  const abstained = Boolean(final.abstained);
  const all = abstained ? final.related || [] : final.citations || [];
  for (const c of all) turn.citations.set(c.n, c);
  const shown = abstained ? all.slice(0, 3) : all.filter((c) => cited.has(c.n));
  const list = shown.length ? shown : all;
  if (!list.length) return;
  const seeAlso = abstained ? [] : all.filter((c) => !list.includes(c)).slice(0, 3);
  const items = (cs) =>
    "<ol>" +
    cs
      .map(
        (c) =>
          `<li><button type="button" class="source" data-n="${c.n}">` +
          `<span class="num">${c.n}</span>${escapeHtml(sourceLabel(c))}${originBadge(c)}</button></li>`,
      )
      .join("") +
    "</ol>";
  const notes = (final.caveats || [])
    .map((caveat) => `<p class="caveat">${escapeHtml(caveat)}</p>`)
    .join("");
  const box = $(".sources", turn);
  box.innerHTML =
    `<h3>${abstained ? "Related passages" : "Sources"}</h3>` +
    items(list) +
    (seeAlso.length ? `<h3>See also</h3>${items(seeAlso)}` : "") +
    notes;
  box.hidden = false;
}

async function ask(question, jurisdiction) {
  const turn = addTurn(question);
  const textBox = $(".text", turn);
  let text = "";
  let final = null;
  let pieces = 0;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "atmp-qa",
        stream: true,
        include_sources: false,
        messages: [{ role: "user", content: question }],
        filters: jurisdiction ? { jurisdiction: [jurisdiction] } : null,
      }),
    });
    if (!response.ok) throw new Error(await errorDetail(response));
    for await (const data of serverEvents(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (typeof chunk.abstained === "boolean") {
        turn.classList.toggle("abstained", chunk.abstained);
        $(".badge", turn).hidden = !chunk.abstained;
      }
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        text += piece;
        textBox.innerHTML = renderAnswer(text);
        turn.dataset.pieces = String(++pieces);
        turn.scrollIntoView({ block: "end" });
      }
      if (chunk.citations) final = chunk;
      if (typeof chunk.replacement === "string") {
        text = chunk.replacement;
        textBox.innerHTML = renderAnswer(text);
      }
    }
    if (!final) throw new Error("The answer stream ended early; try again.");
    showSources(turn, final, text);
    turn.dataset.state = "done";
  } catch (error) {
    turn.classList.add("failed");
    textBox.textContent = error.message;
    turn.dataset.state = "error";
  }
}

function markQuote(text, quote) {
  let html = escapeHtml(text);
  for (const part of (quote || "").split(" … ")) {
    const escaped = escapeHtml(part.trim());
    if (escaped.length > 10 && html.includes(escaped)) {
      html = html.replace(escaped, `<mark>${escaped}</mark>`);
    }
  }
  return html;
}

function neighbour(chunk, where) {
  return (
    `<section class="neighbour ${where}"><h4>${escapeHtml(chunk.section)}</h4>` +
    `<p>${escapeHtml(chunk.text)}</p></section>`
  );
}

async function openPassage(citation) {
  $("#passage-document").textContent = citation.title;
  $("#passage-title").textContent = citation.section;
  const uploaded = citation.origin === UPLOADED ? "Uploaded document, not an official text" : "";
  $("#passage-meta").textContent = [uploaded, citation.page ? `Page ${citation.page}` : ""]
    .filter(Boolean)
    .join(" · ");
  const link = $("#passage-link");
  const url = safeUrl(citation.url);
  link.hidden = !url;
  if (url) link.href = url;
  else link.removeAttribute("href");
  const body = $("#passage-body");
  body.innerHTML = `<section class="current"><p>${markQuote(citation.text, citation.quote)}</p></section>`;
  dialog.dataset.chunkId = citation.chunk_id;
  if (!dialog.open) dialog.showModal();
  const response = await fetch(`/passages/${encodeURIComponent(citation.chunk_id)}?around=1`);
  if (!response.ok) return; // the index changed since the answer: keep the cited text
  const { passage, before, after } = await response.json();
  const heading = passage.heading ? ` — ${passage.heading}` : "";
  // The citation's own section: the paragraph its quote comes from, inside this passage.
  $("#passage-title").textContent = citation.section + heading;
  const path = passage.heading_path.join(" › ");
  const page = passage.page ? `Page ${passage.page}` : "";
  $("#passage-meta").textContent = [uploaded, path, page].filter(Boolean).join(" · ");
  body.innerHTML =
    before.map((c) => neighbour(c, "before")).join("") +
    `<section class="current"><p>${markQuote(passage.text, citation.quote)}</p></section>` +
    after.map((c) => neighbour(c, "after")).join("");
  $(".current", body).scrollIntoView({ block: "center" });
}

log.addEventListener("click", (event) => {
  const example = event.target.closest(".example");
  if (example) {
    input.value = example.textContent;
    form.requestSubmit();
    return;
  }
  const button = event.target.closest(".chip, .source");
  const turn = button?.closest(".answer");
  const citation = turn?.citations.get(Number(button.dataset.n));
  if (citation) openPassage(citation);
});

dialog.addEventListener("click", (event) => {
  if (event.target === dialog || event.target.closest(".close")) dialog.close();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  $("#send").disabled = true;
  try {
    await ask(question, $("#jurisdiction").value);
  } finally {
    $("#send").disabled = false;
    input.focus();
  }
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

async function showStatus() {
  const status = $("#status");
  try {
    const response = await fetch("/ready");
    if (!response.ok) throw new Error(await errorDetail(response));
    const ready = await response.json();
    status.textContent = `${ready.documents} documents · ${ready.chunks} passages`;
    status.title = `Index built ${ready.built_at} with ${ready.model}`;
  } catch (error) {
    status.textContent = "Index not loaded";
    status.title = error.message;
    status.classList.add("down");
  }
}

showStatus();
