// ATMP-QA chat page: keeps the conversation, streams answers from /v1/chat/completions and
// opens cited passages.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const log = $("#log");
const intro = $("#intro");
const form = $("#ask");
const input = $("#question");
const dialog = $("#passage");
const announcer = $("#announce");
const MARKER = /\[(\d+)\]/g;

// The conversation so far, as chat messages: what a follow-up is read against.
let history = [];
let inFlight = null; // the AbortController of the answer being streamed

function escapeHtml(text) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(text).replace(/[&<>"']/g, (c) => entities[c]);
}

// The answer text with each [n] marker turned into a chip that opens source n. `shown` maps
// the server's number to the one on the page; without it the server's numbers are shown.
function renderAnswer(text, shown) {
  return escapeHtml(text).replace(MARKER, (marker, n) => {
    const number = shown ? shown.get(Number(n)) : Number(n);
    if (!number) return shown ? "" : marker;
    return `<button type="button" class="chip" data-n="${number}" aria-label="Source ${number}">${number}</button>`;
  });
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

// The official page of the cited provision where the site has one, else the act's page.
function officialUrl(c) {
  return safeUrl(c.provision_url) || safeUrl(c.url);
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

// The server's sentence for a failed request: `{"detail": …}` or OpenAI's `{"error": {"message"}}`.
async function errorDetail(response) {
  try {
    const body = await response.json();
    const message = typeof body.detail === "string" ? body.detail : body.error?.message;
    return typeof message === "string" ? message : `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function announce(text) {
  announcer.textContent = "";
  // A fresh text node after a tick, so the same words are announced again.
  setTimeout(() => (announcer.textContent = text), 50);
}

// Keeps the newest text in view while the reader is at the bottom of the conversation.
function atBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
}
function followBottom(wasAtBottom) {
  if (wasAtBottom) log.scrollTop = log.scrollHeight;
}

function addTurn(question) {
  intro.remove();
  const asked = document.createElement("div");
  asked.className = "asked";
  const bubble = document.createElement("p");
  bubble.className = "question";
  bubble.textContent = question;
  asked.append(bubble);
  const turn = document.createElement("article");
  turn.className = "answer";
  turn.dataset.state = "streaming";
  turn.setAttribute("aria-busy", "true");
  turn.setAttribute("aria-label", "Answer");
  turn.innerHTML =
    '<p class="badge" hidden>Not answered by the indexed documents</p>' +
    '<div class="text"><span class="typing">Searching the documents…</span></div>' +
    '<div class="sources" hidden></div>';
  turn.question = question;
  turn.asked = asked;
  turn.citations = new Map(); // page number → citation
  log.append(asked, turn);
  log.scrollTop = log.scrollHeight;
  return turn;
}

// The question the server searched for, shown when it rewrote a follow-up.
function showQuestionUsed(turn, questionUsed) {
  const squash = (text) => text.replace(/\s+/g, " ").trim().toLowerCase();
  if (typeof questionUsed !== "string" || !questionUsed.trim()) return;
  if (squash(questionUsed) === squash(turn.question)) return;
  const note = document.createElement("p");
  note.className = "question-used";
  note.textContent = `Searched for: “${questionUsed.trim()}”`;
  turn.asked.append(note);
}

// Sources numbered 1..n on the page, in the order the answer cites them, then "see also".
function numberSources(final, text) {
  const abstained = Boolean(final.abstained);
  const all = (abstained ? final.related : final.citations) || [];
  const byNumber = new Map(all.map((c) => [c.n, c]));
  const cited = [];
  for (const [, n] of text.matchAll(MARKER)) {
    const c = byNumber.get(Number(n));
    if (c && !cited.includes(c)) cited.push(c);
  }
  const sources = abstained ? all.slice(0, 3) : cited.length ? cited : all;
  const seeAlso = abstained ? [] : all.filter((c) => !sources.includes(c)).slice(0, 3);
  const shown = new Map([...sources, ...seeAlso].map((c, i) => [c.n, i + 1]));
  return { abstained, sources, seeAlso, shown };
}

function sourceItem(c, number) {
  const url = officialUrl(c);
  const label = escapeHtml(sourceLabel(c));
  const official = url
    ? `<a class="official" href="${escapeHtml(url)}" target="_blank" rel="noopener" ` +
      `aria-label="Official text of ${label} (opens in a new tab)">official text ↗</a>`
    : "";
  return (
    `<li><button type="button" class="source" data-n="${number}">` +
    `<span class="num">${number}</span><span class="label">${label}${originBadge(c)}</span>` +
    `</button>${official}</li>`
  );
}

function showSources(turn, numbering, caveats) {
  const { abstained, sources, seeAlso, shown } = numbering;
  for (const c of [...sources, ...seeAlso]) turn.citations.set(shown.get(c.n), c);
  const box = $(".sources", turn);
  if (!sources.length) return;
  const items = (cs) => "<ol>" + cs.map((c) => sourceItem(c, shown.get(c.n))).join("") + "</ol>";
  const notes = (caveats || [])
    .map((caveat) => `<p class="caveat">${escapeHtml(caveat)}</p>`)
    .join("");
  box.innerHTML =
    `<h3>${abstained ? "Related passages" : "Sources"}</h3>` +
    items(sources) +
    (seeAlso.length ? `<h3>See also</h3>${items(seeAlso)}` : "") +
    notes;
  box.hidden = false;
}

// The answer as plain text for the clipboard: page numbers, then the numbered sources.
function answerAsText(turn) {
  const text = $(".text", turn).textContent.trim();
  const lines = [...turn.citations.entries()]
    .sort(([a], [b]) => a - b)
    .map(([n, c]) => `${n}. ${sourceLabel(c)}` + (officialUrl(c) ? ` ${officialUrl(c)}` : ""));
  return lines.length ? `${text}\n\nSources\n${lines.join("\n")}` : text;
}

function addActions(turn) {
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.innerHTML = '<button type="button" class="copy">Copy answer</button>';
  turn.append(actions);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.className = "visually-hidden";
  document.body.append(scratch);
  scratch.select();
  const copied = document.execCommand("copy");
  scratch.remove();
  if (!copied) throw new Error("the browser refused to copy");
}

async function copyAnswer(turn, button) {
  try {
    await copyText(answerAsText(turn));
    button.textContent = "Copied";
    announce("Answer copied.");
  } catch (error) {
    button.textContent = "Copy failed";
    announce(`Could not copy the answer: ${error.message}.`);
  }
  setTimeout(() => (button.textContent = "Copy answer"), 2000);
}

async function ask(question, jurisdiction) {
  const turn = addTurn(question);
  const textBox = $(".text", turn);
  const controller = new AbortController();
  inFlight = controller;
  let text = "";
  let final = null;
  let pieces = 0;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      signal: controller.signal,
      body: JSON.stringify({
        model: "atmp-qa",
        stream: true,
        include_sources: false,
        messages: [...history, { role: "user", content: question }],
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
      const follow = atBottom();
      if (piece) {
        text += piece;
        textBox.innerHTML = renderAnswer(text);
        turn.dataset.pieces = String(++pieces);
      }
      if (chunk.citations) final = chunk;
      if (typeof chunk.replacement === "string") text = chunk.replacement;
      followBottom(follow);
    }
    if (!final) throw new Error("The answer stream ended early; try again.");
    const follow = atBottom();
    const numbering = numberSources(final, text);
    textBox.innerHTML = renderAnswer(text, numbering.shown);
    showQuestionUsed(turn, final.question_used);
    showSources(turn, numbering, final.caveats);
    addActions(turn);
    history.push({ role: "user", content: question }, { role: "assistant", content: text });
    turn.dataset.state = "done";
    followBottom(follow);
    const count = numbering.sources.length;
    const found = final.abstained ? "Not answered by the indexed documents. " : "";
    announce(`${found}${textBox.textContent.trim()} ${count} source${count === 1 ? "" : "s"}.`);
  } catch (error) {
    if (controller.signal.aborted) return; // "New chat" dropped this turn
    turn.classList.add("failed");
    textBox.textContent = error.message;
    turn.dataset.state = "error";
    announce(`The question failed: ${error.message}`);
  } finally {
    turn.removeAttribute("aria-busy");
    if (inFlight === controller) inFlight = null;
  }
}

function newChat() {
  inFlight?.abort();
  inFlight = null;
  history = [];
  if (dialog.open) dialog.close();
  log.replaceChildren(intro);
  log.scrollTop = 0;
  input.value = "";
  input.focus();
  announce("New chat started.");
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

// Scrolls the passage body (only it: the header and footer stay put) to the cited text.
function centreCurrent(body) {
  const current = $(".current", body);
  if (current) body.scrollTop = current.offsetTop - (body.clientHeight - current.offsetHeight) / 2;
}

let opener = null; // what had focus before the dialog opened: it gets focus back
async function openPassage(citation) {
  $("#passage-document").textContent = citation.title;
  $("#passage-title").textContent = citation.section;
  const uploaded = citation.origin === UPLOADED ? "Uploaded document, not an official text" : "";
  $("#passage-meta").textContent = [uploaded, citation.page ? `Page ${citation.page}` : ""]
    .filter(Boolean)
    .join(" · ");
  const link = $("#passage-link");
  const url = officialUrl(citation);
  link.hidden = !url;
  if (url) link.href = url;
  else link.removeAttribute("href");
  link.setAttribute("aria-label", `Official text of ${citation.section} (opens in a new tab)`);
  const body = $("#passage-body");
  body.innerHTML = `<section class="current"><p>${markQuote(citation.text, citation.quote)}</p></section>`;
  dialog.dataset.chunkId = citation.chunk_id;
  if (!dialog.open) {
    opener = document.activeElement;
    dialog.showModal();
    $(".close", dialog).focus();
  }
  body.scrollTop = 0;
  const response = await fetch(`/passages/${encodeURIComponent(citation.chunk_id)}?around=1`);
  if (!response.ok || dialog.dataset.chunkId !== citation.chunk_id) return; // keep the cited text
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
  centreCurrent(body);
  dialog.dataset.loaded = citation.chunk_id;
}

// The focusable things of the open dialog, in tab order.
function dialogStops() {
  const candidates = dialog.querySelectorAll("button, [href], [tabindex]:not([tabindex='-1'])");
  return [...candidates].filter((el) => !el.hidden && el.getClientRects().length > 0);
}

// Tab and Shift+Tab go round the dialog's controls; Escape closes it.
dialog.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    dialog.close();
    return;
  }
  if (event.key !== "Tab") return;
  const stops = dialogStops();
  if (!stops.length) return;
  const first = stops[0];
  const last = stops[stops.length - 1];
  const inside = stops.includes(document.activeElement);
  if (event.shiftKey && (document.activeElement === first || !inside)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
    event.preventDefault();
    first.focus();
  }
});

dialog.addEventListener("close", () => {
  delete dialog.dataset.chunkId;
  delete dialog.dataset.loaded;
  if (opener?.isConnected) opener.focus();
  else input.focus();
  opener = null;
});

dialog.addEventListener("click", (event) => {
  if (event.target === dialog || event.target.closest(".close")) dialog.close();
});

log.addEventListener("click", (event) => {
  const example = event.target.closest(".example");
  if (example) {
    input.value = example.textContent;
    form.requestSubmit();
    return;
  }
  const turn = event.target.closest(".answer");
  const copy = event.target.closest(".copy");
  if (copy && turn) {
    copyAnswer(turn, copy);
    return;
  }
  const button = event.target.closest(".chip, .source");
  const citation = turn?.citations.get(Number(button?.dataset.n));
  if (citation) openPassage(citation);
});

$("#new-chat").addEventListener("click", newChat);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question || inFlight) return;
  input.value = "";
  $("#send").disabled = true;
  try {
    await ask(question, $("#jurisdiction").value);
  } finally {
    $("#send").disabled = false;
    if (!dialog.open) input.focus();
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
