// convostore console: one hand-written module, no dependencies, no build step
// (docs/console.md). Everything comes from the JSON API beside this page; the API key,
// if the server needs one, lives in sessionStorage and travels only in the
// Authorization header. Stored items are untrusted input: they are rendered with DOM
// nodes and textContent, never as HTML.

const KEY = "convostore.key";
const API = new URL("v1/", new URL(".", location.href)); // /console -> /v1/ (any prefix)
const PAGE_SIZE = 50;
const FOLD_CHARS = 600;
const FOLD_LINES = 14;
// Fields a read leaves out unless asked for: images for the transcript, all for downloads.
const SHOWN = [
  "message.input_image.image_url",
  "computer_call_output.output.image_url",
  "code_interpreter_call.outputs",
];
const EVERYTHING = [
  ...SHOWN,
  "file_search_call.results",
  "web_search_call.results",
  "web_search_call.action.sources",
  "reasoning.encrypted_content",
  "message.output_text.logprobs",
];
const TEXT_PARTS = new Set(["input_text", "output_text", "text", "summary_text", "reasoning_text"]);
// Fields of calls and outputs shown one by one; the rest of an item is folded JSON.
const CALL_FIELDS = [
  "arguments", "input", "action", "operation", "code", "queries", "output", "outputs",
  "results", "error", "result", "tools", "reason", "approve",
];
const HEAD_FIELDS = new Set(["id", "type", "status", "call_id", "name", "server_label"]);
const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

const $ = (selector, root = document) => root.querySelector(selector);
const enc = encodeURIComponent;
const main = $("#main");

let key = sessionStorage.getItem(KEY);
let open = false; // the server answered without a key
let filters = { metadata: "", after: "", before: "" };
let cleanups = [];
let generation = 0; // bumped when the view changes: late answers of the old one are dropped

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// -- the API ------------------------------------------------------------------------------

async function api(path, { method = "GET", query = [], body } = {}) {
  const url = new URL(path, API);
  for (const [name, value] of query) url.searchParams.append(name, value);
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.message || `HTTP ${response.status}`);
  }
  return data;
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(`The server no longer accepts this key: ${error.message}`);
  } else {
    say(error.message || String(error), true);
  }
}

// -- small DOM helpers --------------------------------------------------------------------

function el(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

function clone(id) {
  return $(`#${id}`).content.firstElementChild.cloneNode(true);
}

function button(text, onClick, className = "quiet small", label = "") {
  const node = el("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

function say(message, bad = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("bad", bad);
}

function setTime(node, seconds) {
  const date = new Date(seconds * 1000);
  node.dateTime = date.toISOString();
  node.textContent = DATE.format(date);
}

function plural(count, word, words = `${word}s`) {
  return `${count} ${count === 1 ? word : words}`;
}

function chips(node, metadata) {
  node.replaceChildren(
    ...Object.entries(metadata || {}).map(([name, value]) => el("span", "chip", `${name}: ${value}`)),
  );
}

function show(node, focus = main) {
  main.replaceChildren(node);
  window.scrollTo(0, 0);
  focus.focus({ preventScroll: true });
}

// The conversation or response at `path` for the page that shows it, or null when the
// server has none (404): then a panel titled `missing` says so, with the server's
// message and the way back to the list.
async function fetchShown(path, options, missing) {
  try {
    return await api(path, options);
  } catch (error) {
    if (error.status !== 404) throw error;
    const panel = el("section", "panel");
    panel.append(el("h1", "", missing), el("p", "", error.message), el("p"));
    const back = el("a", "", "← Conversations");
    back.href = "#/";
    panel.lastChild.append(back);
    show(panel);
    return null;
  }
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  say(`Copied ${what} ${text}`);
}

// A modal dialog: a confirmation, or a text field checked by `check` (which answers an
// error message to show, or nothing). Focus starts on Cancel (or the field) and returns
// to the control that opened it.
function ask({ title, text, ok, danger = false, value = null, label = "", check = null }) {
  const dialog = $("#dialog");
  const form = $("form", dialog);
  const area = $("#dialog-input");
  const error = $("#dialog-error");
  const okButton = $("#dialog-ok");
  const opener = document.activeElement;
  $("#dialog-title").textContent = title;
  $("#dialog-text").textContent = text;
  $("#dialog-label").textContent = label;
  $("#dialog-field").hidden = value === null;
  area.value = value ?? "";
  error.textContent = "";
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "";
  return new Promise((resolve) => {
    const finish = (answer) => {
      form.removeEventListener("submit", submit);
      dialog.removeEventListener("cancel", cancel);
      dialog.close();
      if (opener?.isConnected) opener.focus();
      resolve(answer);
    };
    const cancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    async function submit(event) {
      event.preventDefault();
      if (event.submitter?.value !== "ok") return finish(null);
      if (check) {
        okButton.disabled = true;
        const problem = await check(area.value).catch((failure) => failure.message);
        okButton.disabled = false;
        if (problem) {
          error.textContent = problem;
          area.focus();
          return;
        }
      }
      finish(value === null ? true : area.value);
    }
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    (value === null ? $("#dialog-cancel") : area).focus();
  });
}

// Endless scroll: `load` appends a page and answers whether there is more. An
// IntersectionObserver on `sentinel` asks for the next page as it comes near the
// viewport; `next()` can also be awaited (to page up to a search hit).
function endless(sentinel, load) {
  let done = false;
  let inflight = null;
  const observer = new IntersectionObserver(
    (entries) => entries.some((entry) => entry.isIntersecting) && pager.next(),
    { rootMargin: "800px 0px" },
  );
  const pager = {
    get done() {
      return done;
    },
    next() {
      if (done) return Promise.resolve();
      inflight ??= (async () => {
        try {
          done = !(await load());
        } catch (error) {
          done = true;
          sentinel.textContent = "";
          fail(error);
        }
        inflight = null;
        observer.unobserve(sentinel);
        if (!done) observer.observe(sentinel); // reports again at once if still near
      })();
      return inflight;
    },
  };
  observer.observe(sentinel);
  cleanups.push(() => observer.disconnect());
  return pager;
}

// -- routing and signing in ---------------------------------------------------------------

function parts() {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

async function route() {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  generation += 1;
  try {
    if (!key && !open) {
      open = await opens();
      if (!open) return showSignIn();
    }
    setMode();
    const [view, first, second] = parts();
    if (view === "c" && first) return await showConversation(first, second);
    if (view === "r" && first) return await showResponse(first);
    if (view === "search" && first) return showList(first);
    return showList();
  } catch (error) {
    fail(error);
  }
}

async function opens() {
  try {
    await api("conversations", { query: [["limit", "1"]] });
    return true;
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}

function setMode() {
  $("#mode").textContent = key ? "signed in" : open ? "open server (no API keys)" : "";
  $("#signout").hidden = !key;
}

function signOut(message) {
  key = null;
  open = false;
  sessionStorage.removeItem(KEY);
  setMode();
  showSignIn(message);
}

function showSignIn(message = "") {
  generation += 1;
  const form = clone("t-signin");
  const error = $(".error", form);
  error.textContent = message;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = form.elements.key.value.trim();
    if (!candidate) {
      error.textContent = "Paste a key first.";
      return;
    }
    key = candidate;
    try {
      await api("conversations", { query: [["limit", "1"]] });
    } catch (failure) {
      key = null;
      error.textContent = failure.status === 401 ? `This key was refused: ${failure.message}` : failure.message;
      return;
    }
    form.elements.key.value = "";
    sessionStorage.setItem(KEY, key);
    say("");
    route();
  });
  show(form, form.elements.key);
}

// -- the list of conversations, and search ------------------------------------------------

function filterQuery() {
  const query = [];
  for (const pair of filters.metadata.split(",")) {
    const text = pair.trim();
    if (!text) continue;
    const at = text.indexOf("=");
    if (at < 1) throw new Error(`A metadata filter is key=value, got "${text}".`);
    query.push([`metadata[${text.slice(0, at).trim()}]`, text.slice(at + 1).trim()]);
  }
  const seconds = (day, plusDays) => {
    const [y, m, d] = day.split("-").map(Number);
    return String(new Date(y, m - 1, d + plusDays).getTime() / 1000);
  };
  if (filters.after) query.push(["created_after", seconds(filters.after, 0)]);
  if (filters.before) query.push(["created_before", seconds(filters.before, 1)]); // the whole day
  return query;
}

function showList(q = "") {
  const section = clone("t-list");
  const [searchForm, filterForm, responseForm] = section.querySelectorAll("form");
  responseForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = responseForm.elements.response.value.trim();
    if (id) location.hash = `#/r/${enc(id)}`;
  });
  const rows = $(".rows", section);
  const more = $(".more", section);
  searchForm.elements.q.value = q;
  for (const name of ["metadata", "after", "before"]) filterForm.elements[name].value = filters[name];
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = searchForm.elements.q.value.trim();
    location.hash = text ? `#/search/${enc(text)}` : "#/";
  });
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const previous = filters;
    filters = Object.fromEntries(["metadata", "after", "before"].map((n) => [n, filterForm.elements[n].value.trim()]));
    try {
      filterQuery();
    } catch (error) {
      filters = previous;
      return say(error.message, true);
    }
    say("");
    if (location.hash === "#/") route();
    else location.hash = "#/";
  });
  filterForm.addEventListener("reset", () => {
    filters = { metadata: "", after: "", before: "" };
    setTimeout(route);
  });

  const terms = q.match(/[\p{L}\p{N}]+/gu) || [];
  const path = q ? "conversations/search" : "conversations";
  const base = q ? [["q", q]] : filterQuery();
  $(".title", section).textContent = q ? `Items matching “${q}”` : base.length ? "Conversations (filtered)" : "Conversations";
  const mine = generation;
  let after = null;
  endless(more, async () => {
    more.textContent = "Loading…";
    const page = await api(path, { query: [...base, ["limit", "20"], ...(after ? [["after", after]] : [])] });
    if (mine !== generation) return false;
    rows.append(...page.data.map((entry) => (q ? hitRow(entry, terms) : conversationRow(entry))));
    after = page.last_id;
    const count = rows.children.length;
    more.textContent = page.has_more
      ? ""
      : count ? `${q ? plural(count, "match", "matches") : plural(count, "conversation")}, all shown`
      : q ? "No item matches." : "No conversations.";
    return page.has_more;
  });
  show(section);
}

function conversationRow(conversation) {
  const row = clone("t-row");
  $("a", row).href = `#/c/${enc(conversation.id)}`;
  $(".cid", row).textContent = conversation.id;
  chips($(".chips", row), conversation.metadata);
  if (conversation.safety_identifier) {
    // D22: given by the client on create, shown to operators only.
    $(".chips", row).append(el("span", "chip", `safety_identifier: ${conversation.safety_identifier}`));
  }
  if (conversation.item_count) queuePreview(conversation.id, $(".preview", row));
  $(".count", row).textContent = plural(conversation.item_count, "item");
  setTime($(".created", row), conversation.created_at);
  setTime($(".active", row), conversation.last_active_at);
  return row;
}

// A conversation's preview is its first user message's text, read from its first few
// items (a page of at most PREVIEW_ITEMS), at most PREVIEWS_IN_FLIGHT rows at a time.
const PREVIEW_ITEMS = 10;
const PREVIEWS_IN_FLIGHT = 4;
const PREVIEW_CHARS = 200;
const previewQueue = [];
let previewsRunning = 0;

function queuePreview(id, node) {
  previewQueue.push([id, node]);
  pumpPreviews();
}

function pumpPreviews() {
  while (previewsRunning < PREVIEWS_IN_FLIGHT && previewQueue.length) {
    const [id, node] = previewQueue.shift();
    previewsRunning++;
    firstUserText(id)
      .then((text) => {
        node.textContent = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
        node.title = text.slice(0, 1000);
      })
      .catch(() => {}) // a preview is a nicety: the row stands without it
      .finally(() => {
        previewsRunning--;
        pumpPreviews();
      });
  }
}

async function firstUserText(id) {
  const page = await api(`conversations/${enc(id)}/items`, { query: [["order", "asc"], ["limit", String(PREVIEW_ITEMS)]] });
  const first = page.data.find((item) => item.type === "message" && item.role === "user");
  return first ? itemText(first).replace(/\s+/g, " ").trim() : "";
}

function hitRow(hit, terms) {
  const row = clone("t-hit");
  $("a", row).href = `#/c/${enc(hit.conversation_id)}/${enc(hit.item.id)}`;
  $(".kind", row).textContent = headline(hit.item);
  $(".cid", row).textContent = hit.conversation_id;
  highlight($(".snippet", row), snippet(itemText(hit.item), terms), terms);
  return row;
}

function itemText(item) {
  const texts = [];
  const walk = (parts) => {
    for (const part of Array.isArray(parts) ? parts : []) {
      if (TEXT_PARTS.has(part?.type) && typeof part.text === "string") texts.push(part.text);
      if (part?.type === "refusal" && typeof part.refusal === "string") texts.push(part.refusal);
    }
  };
  walk(item.content);
  walk(item.summary);
  for (const field of ["arguments", "output", "input"]) {
    if (typeof item[field] === "string") texts.push(item[field]);
  }
  return texts.join(" ");
}

function snippet(text, terms) {
  const lower = text.toLowerCase();
  const found = terms.map((term) => lower.indexOf(term.toLowerCase())).filter((at) => at >= 0);
  const at = found.length ? Math.min(...found) : 0; // the first word found
  const start = Math.max(0, at - 80);
  return (start ? "…" : "") + text.slice(start, start + 280) + (text.length > start + 280 ? "…" : "");
}

function highlight(node, text, terms) {
  const escaped = terms.map((term) => term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pieces = escaped.length ? text.split(new RegExp(`(${escaped.join("|")})`, "giu")) : [text];
  node.replaceChildren(...pieces.map((piece, i) => (i % 2 ? el("mark", "", piece) : document.createTextNode(piece))));
}

// The next page of the items at `path` (oldest first, after the last one `state` holds),
// placed in `state`; null when the view changed meanwhile (`mine` is no longer current).
async function nextItems(state, path, mine) {
  const query = [["order", "asc"], ["limit", String(PAGE_SIZE)], ...SHOWN.map((v) => ["include[]", v])];
  const after = state.ids.at(-1);
  if (after) query.push(["after", after]);
  const page = await api(path, { query });
  if (mine !== generation) return null;
  for (const item of page.data) place(state, item);
  return page;
}

// -- one conversation ---------------------------------------------------------------------

async function showConversation(id, target) {
  const mine = generation;
  const conversation = await fetchShown(`conversations/${enc(id)}`, {}, "Conversation not found");
  if (conversation === null || mine !== generation) return;
  const section = clone("t-conversation");
  const list = $(".items", section);
  const more = $(".more", section);
  const loaded = $(".loaded", section);
  const state = { id, list, ids: [], byId: new Map(), calls: new Map(), waiting: new Map() };
  $(".cid", section).textContent = conversation.id;
  setTime($(".created", section), conversation.created_at);
  chips($(".chips", section), conversation.metadata);
  const count = () => (loaded.textContent = `${plural(state.ids.length, "item")} loaded`);
  count();
  state.counted = count;

  const actions = {
    "copy-conversation": () => copy(id, "conversation id"),
    download: (event) => download(id, event.currentTarget),
    "edit-metadata": () => editMetadata(conversation, $(".chips", section)),
    "delete-conversation": () => deleteConversation(id),
  };
  for (const node of section.querySelectorAll("[data-action]")) {
    node.addEventListener("click", actions[node.dataset.action]);
  }

  const pager = endless(more, async () => {
    more.textContent = "Loading…";
    const page = await nextItems(state, `conversations/${enc(id)}/items`, mine);
    if (page === null) return false;
    count();
    more.textContent = page.has_more ? "" : state.ids.length ? "End of the conversation." : "No items.";
    return page.has_more;
  });
  show(section);
  if (!target) return;
  while (!state.byId.has(target) && !pager.done && mine === generation) await pager.next();
  const found = state.byId.get(target);
  if (!found) return say(`Item ${target} is not in this conversation any more.`, true);
  found.classList.add("target");
  found.tabIndex = -1;
  found.scrollIntoView({ block: "center" });
  found.focus({ preventScroll: true });
}

// A stored response (issue 17): GET /v1/responses/{id}, its input items page by page,
// its output; links to its conversation and the response it continues. Its items are
// shown read-only (they are the response's, not a conversation's to edit).
async function showResponse(id) {
  const mine = generation;
  const query = SHOWN.map((v) => ["include[]", v]);
  const response = await fetchShown(`responses/${enc(id)}`, { query }, "Response not found");
  if (response === null || mine !== generation) return;
  const section = clone("t-response");
  const more = $(".more", section);
  $(".rid", section).textContent = response.id;
  $(".rstatus", section).textContent = response.status;
  $(".model", section).textContent = response.model;
  setTime($(".created", section), response.created_at);
  chips($(".chips", section), response.metadata || {});
  if (response.error) $(".rerror", section).textContent = response.error.message;
  const links = $(".links", section);
  if (response.conversation?.id) {
    const link = el("a", "mono", response.conversation.id);
    link.href = `#/c/${enc(response.conversation.id)}`;
    links.append(" · in ", link);
  }
  if (response.previous_response_id) {
    const link = el("a", "mono", response.previous_response_id);
    link.href = `#/r/${enc(response.previous_response_id)}`;
    links.append(" · continues ", link);
  }
  if (response.background) links.append(" · background");
  const readOnly = (list) => ({ id, list, ids: [], byId: new Map(), calls: new Map(), waiting: new Map(), readOnly: true });
  const inputs = readOnly($(".inputs", section));
  const output = readOnly($(".answer", section));
  for (const item of response.output) place(output, item);
  if (!response.output.length) output.list.append(el("li", "facts", "No output."));
  const cancel = $('[data-action="cancel-response"]', section);
  cancel.hidden = !(response.background && ["queued", "in_progress"].includes(response.status));
  const actions = {
    "copy-response": () => copy(id, "response id"),
    "cancel-response": () => cancelResponse(id),
    "delete-response": () => deleteResponse(id),
  };
  for (const node of section.querySelectorAll("[data-action]")) {
    node.addEventListener("click", actions[node.dataset.action]);
  }
  endless(more, async () => {
    more.textContent = "Loading…";
    const page = await nextItems(inputs, `responses/${enc(id)}/input_items`, mine);
    if (page === null) return false;
    more.textContent = page.has_more ? "" : inputs.ids.length ? "" : "No input items.";
    return page.has_more;
  });
  show(section);
}

async function cancelResponse(id) {
  try {
    const response = await api(`responses/${enc(id)}/cancel`, { method: "POST" });
    say(`Response ${id} is ${response.status}.`);
  } catch (error) {
    return fail(error);
  }
  route();
}

async function deleteResponse(id) {
  const question = {
    title: "Delete this response?",
    text: `Response ${id} will be deleted; the items a conversation holds stay there. This cannot be undone.`,
    ok: "Delete response",
  };
  if (!(await confirmedDelete(question, `responses/${enc(id)}`))) return;
  location.hash = "#/";
  say(`Deleted response ${id}.`);
}

// Calls and their outputs pair by call_id (MCP approvals by the request's id): an output
// goes under its call; one whose call is not loaded yet stands alone until it comes.
function pairKey(item) {
  if (item.type === "mcp_approval_request") return item.id;
  if (isOutput(item)) return item.call_id ?? item.approval_request_id ?? null;
  return isCall(item) ? item.call_id ?? null : null;
}

function isCall(item) {
  return item.type.endsWith("_call") || item.type === "mcp_approval_request";
}

function isOutput(item) {
  return item.type.endsWith("_output") || item.type === "mcp_approval_response";
}

function place(state, item) {
  const node = renderItem(item, state);
  state.byId.set(item.id, node);
  state.ids.push(item.id);
  const pair = pairKey(item);
  if (pair !== null && isOutput(item)) {
    const call = state.calls.get(pair);
    if (call) return $(".outputs", call).append(node);
    node.classList.add("orphan");
    state.waiting.set(pair, [...(state.waiting.get(pair) || []), node]);
  }
  state.list.append(node);
  if (pair !== null && isCall(item)) {
    state.calls.set(pair, node);
    for (const output of state.waiting.get(pair) || []) {
      output.classList.remove("orphan");
      $(".outputs", node).append(output);
    }
    state.waiting.delete(pair);
  }
}

function headline(item) {
  if (item.type === "message") return `${item.role} message`;
  const name = [item.server_label, item.name].filter((part) => typeof part === "string").join(".");
  return name ? `${item.type} ${name}` : item.type;
}

function renderItem(item, state) {
  const node = el("li", "item");
  node.dataset.id = item.id;
  node.dataset.type = item.type;
  const head = el("div", "head");
  head.append(el("span", "kind", item.type === "message" ? item.role : headline(item)));
  if (item.type === "message" && item.phase) head.append(el("span", "badge", item.phase));
  if (item.status && item.status !== "completed") head.append(el("span", "badge", item.status));
  const pair = pairKey(item);
  if (pair !== null && item.type !== "mcp_approval_request") head.append(el("span", "badge mono", pair));
  const itemId = el("code", "iid", item.id);
  itemId.title = item.id;
  head.append(
    itemId,
    button("Copy id", () => copy(item.id, "item id"), "quiet small", `Copy id of item ${item.id}`),
  );
  if (!state.readOnly) {
    head.append(
      button("Fork from here", () => forkAt(state, item.id), "quiet small", `Fork the conversation at item ${item.id}`),
      button("Delete", () => deleteItem(state, item.id), "danger small", `Delete item ${item.id}`),
    );
  }
  node.append(head);
  if (item.type === "message") renderMessage(node, item);
  else if (item.type === "reasoning") renderReasoning(node, item);
  else if (isCall(item) || isOutput(item) || item.type === "mcp_list_tools") renderCall(node, item);
  else node.append(fold(item, item.type, true)); // a type the console does not know: folded
  if (isCall(item)) node.append(el("ol", "outputs"));
  return node;
}

function renderMessage(node, item) {
  node.classList.add("message");
  if (/^[a-z]+$/.test(item.role)) node.classList.add(`role-${item.role}`);
  for (const part of Array.isArray(item.content) ? item.content : [item.content]) node.append(renderPart(part));
}

function renderPart(part) {
  if (typeof part === "string") return el("p", "text", part);
  if (TEXT_PARTS.has(part?.type) && typeof part.text === "string") return el("p", "text", part.text);
  if (part?.type === "refusal") return el("p", "text refusal", `Refused: ${part.refusal}`);
  if (part?.type === "input_image" || part?.type === "computer_screenshot") {
    return image(part.image_url, part.file_id ? `image file ${part.file_id}` : "image (URL not stored)");
  }
  if (part?.type === "input_file") {
    const wrap = el("p", "note", `file ${part.filename || part.file_id || ""}`.trim());
    if (/^https?:\/\//i.test(part.file_url || "")) {
      const link = el("a", "", " open");
      link.href = part.file_url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      wrap.append(link);
    }
    if (typeof part.file_data === "string") wrap.append(` (inline, ${part.file_data.length} characters)`);
    return wrap;
  }
  return fold(part, part?.type || "part");
}

// Only data:image URLs become images at once. A remote http(s) image is fetched only on a
// click: loading it tells its host that this item was read (a tracking pixel) and sends a
// GET from the operator's browser, inside the operator's network, to any address an item
// names. Any other URL (javascript:, data:text/html…) is shown as text.
function image(url, fallback) {
  if (typeof url !== "string") return el("p", "note", fallback);
  if (/^data:image\//i.test(url)) return picture(url);
  if (!/^https?:/i.test(url)) return el("p", "note", `image not shown: ${url.slice(0, 120)}`);
  const wrap = el("p", "note remote-image", `remote image, not loaded: ${url.slice(0, 200)} `);
  let host = "";
  try {
    host = new URL(url).host;
  } catch {
    return el("p", "note", `image not shown: ${url.slice(0, 120)}`);
  }
  wrap.append(button("Show", () => wrap.replaceWith(picture(url)), "quiet small", `Load the image from ${host}`));
  return wrap;
}

function picture(url) {
  const img = el("img");
  img.alt = "image of the item";
  img.loading = "lazy";
  img.referrerPolicy = "no-referrer";
  img.src = url;
  return img;
}

function renderReasoning(node, item) {
  node.classList.add("reasoning");
  for (const part of item.summary || []) node.append(renderPart(part));
  if (!item.summary?.length) node.append(el("p", "note", "no summary"));
  if (Array.isArray(item.content) && item.content.length) {
    node.append(fold(item.content.map((part) => part.text ?? part).join("\n\n"), "reasoning text", true));
  }
  if (item.encrypted_content) node.append(el("p", "note", `encrypted content (${item.encrypted_content.length} characters)`));
}

function renderCall(node, item) {
  node.classList.add(isOutput(item) ? "output" : "call");
  for (const name of CALL_FIELDS) {
    if (item[name] === undefined || item[name] === null) continue;
    const field = el("div", "field");
    field.append(el("div", "name", name));
    field.append(...renderValue(item, name));
    node.append(field);
  }
  const rest = Object.fromEntries(
    Object.entries(item).filter(([name]) => !HEAD_FIELDS.has(name) && !CALL_FIELDS.includes(name)),
  );
  if (Object.keys(rest).length) node.append(fold(rest, "more fields", true));
}

function renderValue(item, name) {
  const value = item[name];
  if (name === "result" && item.type === "image_generation_call" && typeof value === "string") {
    return [image(`data:image/png;base64,${value}`, "image")];
  }
  if (Array.isArray(value) && value.every((part) => typeof part?.type === "string")) {
    return value.map((part) =>
      part.type === "image" && part.url ? image(part.url, "image") : renderPart(part),
    );
  }
  if (value?.type === "computer_screenshot") return [renderPart(value)];
  return [fold(value, name)];
}

// JSON (or JSON in a string, such as a call's arguments) pretty-printed; long text folded.
function fold(value, title, folded = false) {
  let text = value;
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      if (parsed !== null && typeof parsed === "object") text = JSON.stringify(parsed, null, 2);
    } catch {
      // not JSON: shown as it is
    }
  } else {
    text = JSON.stringify(value, null, 2);
  }
  const pre = el("pre", "", text);
  const lines = text.split("\n").length;
  if (!folded && text.length <= FOLD_CHARS && lines <= FOLD_LINES) return pre;
  const details = el("details");
  details.append(el("summary", "", `${title} (${plural(lines, "line")}, ${text.length} characters)`), pre);
  return details;
}

// -- actions ------------------------------------------------------------------------------

// Ask first (`question`: the dialog's title, text and button), then DELETE `path`: true
// once it is gone; a refusal is said by fail.
async function confirmedDelete(question, path) {
  if (!(await ask({ ...question, danger: true }))) return false;
  try {
    await api(path, { method: "DELETE" });
  } catch (error) {
    fail(error);
    return false;
  }
  return true;
}

async function deleteItem(state, itemId) {
  const question = {
    title: "Delete this item?",
    text: `Item ${itemId} will be removed from the conversation. This cannot be undone.`,
    ok: "Delete item",
  };
  const path = `conversations/${enc(state.id)}/items/${enc(itemId)}`;
  if (!(await confirmedDelete(question, path))) return;
  const node = state.byId.get(itemId);
  for (const output of node.querySelectorAll(":scope > .outputs > .item")) {
    output.classList.add("orphan");
    node.before(output); // its call is gone: the output stands alone
  }
  const next = node.nextElementSibling || node.previousElementSibling;
  node.remove();
  state.byId.delete(itemId);
  state.ids = state.ids.filter((id) => id !== itemId);
  for (const [pair, call] of state.calls) if (call === node) state.calls.delete(pair);
  state.counted();
  say(`Deleted item ${itemId}.`);
  // Focus goes to the next item's Delete button (or the heading), not lost on <body>.
  const focus = next?.querySelector("button.danger") || $("h1", main);
  if (focus.tagName === "H1") focus.tabIndex = -1;
  focus.focus();
}

// A new conversation with the items up to this one (POST …/fork, docs/fork.md); the
// console opens it, and this one stays as it is.
async function forkAt(state, itemId) {
  const yes = await ask({
    title: "Fork from here?",
    text: `A new conversation will hold the items of ${state.id} up to and including ${itemId}. This one stays as it is.`,
    ok: "Fork",
  });
  if (!yes) return;
  let forked;
  try {
    forked = await api(`conversations/${enc(state.id)}/fork`, { method: "POST", body: { until: itemId } });
  } catch (error) {
    return fail(error);
  }
  location.hash = `#/c/${enc(forked.id)}`;
  say(`Forked into ${forked.id} (${plural(forked.item_count, "item")}).`);
}

async function deleteConversation(id) {
  const question = {
    title: "Delete this conversation?",
    text: `Conversation ${id} and all its items will be deleted. This cannot be undone.`,
    ok: "Delete conversation",
  };
  if (!(await confirmedDelete(question, `conversations/${enc(id)}`))) return;
  location.hash = "#/";
  say(`Deleted conversation ${id}.`);
}

async function editMetadata(conversation, chipsNode) {
  const check = async (text) => {
    let metadata;
    try {
      metadata = JSON.parse(text || "{}");
    } catch (error) {
      return `Not JSON: ${error.message}`;
    }
    const updated = await api(`conversations/${enc(conversation.id)}`, { method: "POST", body: { metadata } });
    conversation.metadata = updated.metadata;
    return null;
  };
  const saved = await ask({
    title: "Edit metadata",
    text: "Up to 16 string values, as a JSON object. Saving replaces the whole object.",
    ok: "Save",
    label: "Metadata (JSON)",
    value: JSON.stringify(conversation.metadata || {}, null, 2),
    check,
  });
  if (saved === null) return;
  chips(chipsNode, conversation.metadata);
  say("Metadata saved.");
}

async function download(id, trigger) {
  const label = trigger.textContent;
  trigger.disabled = true;
  const lines = [];
  let after = null;
  try {
    do {
      const query = [["order", "asc"], ["limit", "100"], ...EVERYTHING.map((v) => ["include[]", v])];
      if (after) query.push(["after", after]);
      const page = await api(`conversations/${enc(id)}/items`, { query });
      for (const item of page.data) lines.push(`${JSON.stringify(item)}\n`);
      after = page.has_more ? page.last_id : null;
      trigger.textContent = `Downloading… ${lines.length}`;
    } while (after);
  } catch (error) {
    return fail(error);
  } finally {
    trigger.disabled = false;
    trigger.textContent = label;
  }
  const url = URL.createObjectURL(new Blob(lines, { type: "application/x-ndjson" }));
  const link = el("a");
  link.href = url;
  link.download = `${id.replace(/[^\w.-]/g, "_")}.jsonl`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  say(`Downloaded ${plural(lines.length, "item")} as ${link.download}.`);
}

$("#signout").addEventListener("click", () => {
  history.replaceState(null, "", location.pathname); // the next key starts at the list
  signOut("Signed out.");
});
window.addEventListener("hashchange", route);
route();
