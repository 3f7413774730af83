// The reference chat client of messages-service: plain JavaScript, no build step, no library.
// It uses only the public API (docs/api.md), the way a frontend of the service should:
//   - open the live stream first, then load the newest page, and upsert everything by message id,
//     keeping the higher version, so a change committed while the page loads is neither lost
//     nor shown twice;
//   - resume a broken stream with Last-Event-ID, so a restart or a network change loses nothing;
//   - send with an Idempotency-Key and retry network errors and 429/502/503/504 with the same key,
//     so a retry never duplicates a message;
//   - edit with If-Match, so an edit made on a stale copy is refused (412) instead of overwriting;
//   - show every API error as the API words it.
"use strict";

const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉"];
const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  userId: null,
  roles: [],
  devTokens: false,
  channelId: null,
  // Bumped by every openChannel: work started for an earlier channel checks it after each await
  // and drops its result, so a late answer never lands in the channel opened since.
  generation: 0,
  messages: new Map(), // id -> message, roots and replies of the open channel
  hasBefore: false, // more roots older than the oldest loaded one
  before: null, // the cursor of the older page
  loadingOlder: false,
  olderPausedUntil: 0, // after a failed older page, no new attempt before this time
  pageLoaded: false,
  lastEventId: null, // the stream position to resume from
  streamAbort: null,
  firstUnreadSeq: null, // the first root after the read marker when the channel was opened
  lastMarkedSeq: 0,
  myReactions: new Set(), // "<message id> <emoji>" this page added
  editing: null, // {id, version, draft}: the message being edited, the version it started from
  threadRoot: null,
  pending: [], // messages being sent, or that failed: {key, channel, path, body, failed}
};

// ---------------------------------------------------------------------------------------------
// Talking to the API

class ApiError extends Error {
  constructor(status, body) {
    // v1 errors are {"error": {"code", "message", "request_id"}}: show the API's own words.
    super(body?.error?.message ?? `the service answered HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(method, path, { body, headers = {} } = {}) {
  const allHeaders = { ...headers };
  if (state.token) allHeaders.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) allHeaders["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: allHeaders,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let json = null;
  if (response.status !== 204) {
    try {
      json = await response.json();
    } catch {
      json = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return { status: response.status, json, headers: response.headers };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Retries what may succeed later with the same request: a network error (the service restarting,
// a dropped connection) or a 429/502/503/504. A write carries the same Idempotency-Key on every
// attempt, so the service stores it once whichever attempt got through.
async function withRetry(call) {
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retriable = !(error instanceof ApiError) || [429, 502, 503, 504].includes(error.status);
      if (!retriable || attempt >= 15) throw error;
      await sleep(delay);
      delay = Math.min(delay * 2, 4000);
    }
  }
}

// crypto.randomUUID exists only in secure contexts (https, localhost); this works everywhere.
function uuid4() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Paths are built when an action starts, from the channel open then: an answer or a retry that
// comes after the user opened another channel still goes to (and stays with) the first one.
const channelPath = (suffix = "") => `/v1/channels/${state.channelId}${suffix}`;
const stillCurrent = (generation) => generation === state.generation;

// ---------------------------------------------------------------------------------------------
// Errors and status

let errorTimer = null;
function showError(error) {
  const box = $("error");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (box.hidden = true), 8000);
}

function setStreamState(name, text) {
  const badge = $("stream-state");
  badge.dataset.state = name;
  badge.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Signing in

// The token's claims, read without verifying (the service verifies it on every call).
function claimsOf(token) {
  const part = token.split(".")[1];
  if (!part) throw new Error("this is not a JWT (header.payload.signature)");
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function signIn(token) {
  const claims = claimsOf(token.trim());
  if (typeof claims.sub !== "string") throw new Error("the token has no sub (user id)");
  state.token = token.trim();
  state.userId = claims.sub;
  state.roles = Array.isArray(claims.roles) ? claims.roles : [];
  sessionStorage.setItem("token", state.token);
  $("whoami").textContent = `${state.userId}${state.roles.length ? ` (${state.roles.join(", ")})` : ""}`;
  $("sign-in-panel").hidden = true;
  $("chat").hidden = false;
  $("sign-out").hidden = false;
  renderChannelList();
  const fromHash = location.hash.slice(1);
  const channels = savedChannels();
  if (fromHash) openChannel(fromHash);
  else if (channels.length) openChannel(channels[0]);
}

function signOut() {
  sessionStorage.removeItem("token");
  location.hash = "";
  location.reload();
}

async function fetchDevToken(userId, moderator) {
  const body = { roles: moderator ? ["moderator"] : [] };
  if (userId) body.user_id = userId;
  const { json } = await api("POST", "/dev/token", { body });
  return json.token;
}

// ---------------------------------------------------------------------------------------------
// Channels and unread counts

const channelsKey = () => `channels:${state.userId}`;
const savedChannels = () => JSON.parse(localStorage.getItem(channelsKey()) ?? "[]");

function rememberChannel(id) {
  const channels = savedChannels().filter((c) => c !== id);
  channels.unshift(id);
  localStorage.setItem(channelsKey(), JSON.stringify(channels.slice(0, 20)));
  renderChannelList();
}

function renderChannelList() {
  const list = $("channels");
  list.replaceChildren();
  for (const id of savedChannels()) {
    const item = document.createElement("li");
    item.dataset.channel = id;
    item.classList.toggle("current", id === state.channelId);
    const name = document.createElement("span");
    name.textContent = id.slice(0, 13) + "…";
    name.title = id;
    const badge = document.createElement("span");
    badge.className = "badge unread-count";
    badge.hidden = true;
    item.append(name, badge);
    item.addEventListener("click", () => openChannel(id));
    list.append(item);
  }
  refreshUnreadCounts();
}

// Unread counts of the remembered channels, from each channel's read marker. Coalesced: one
// refresh at a time, at most one every 3 s, so a busy channel does not spend the caller's rate
// limit (RATE_LIMIT_RPS) on badges.
let unreadTimer = null;
let unreadAgain = false;
let unreadLast = 0;
function refreshUnreadCounts() {
  if (unreadTimer) {
    unreadAgain = true;
    return;
  }
  unreadTimer = setTimeout(async () => {
    try {
      await refreshUnreadCountsNow();
    } finally {
      unreadLast = Date.now();
      unreadTimer = null;
      if (unreadAgain) {
        unreadAgain = false;
        refreshUnreadCounts();
      }
    }
  }, Math.max(0, unreadLast + 3000 - Date.now()));
}

async function refreshUnreadCountsNow() {
  for (const item of $("channels").children) {
    try {
      const { json } = await api("GET", `/v1/channels/${item.dataset.channel}/read`);
      const badge = item.querySelector(".unread-count");
      badge.textContent = json.unread >= 999 ? "999+" : String(json.unread);
      badge.hidden = json.unread === 0;
      if (item.dataset.channel === state.channelId) showUnread(json.unread);
    } catch {
      // A channel the caller may no longer read: its badge stays as it was.
    }
  }
}

function showUnread(count) {
  $("unread").textContent = `${count} unread`;
  $("unread").hidden = count === 0;
}

// ---------------------------------------------------------------------------------------------
// Opening a channel: stream first, then the newest page

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function openChannel(id) {
  id = id.trim().toLowerCase();
  if (!UUID_PATTERN.test(id)) return showError("a channel id is a UUID");
  state.streamAbort?.abort();
  clearTimeout(markTimer);
  Object.assign(state, {
    generation: state.generation + 1,
    channelId: id,
    messages: new Map(),
    hasBefore: false,
    before: null,
    loadingOlder: false,
    olderPausedUntil: 0,
    oldestShownSeq: null,
    loadingPage: false,
    pageLoaded: false,
    lastEventId: null,
    firstUnreadSeq: null,
    lastMarkedSeq: 0,
    editing: null,
    threadRoot: null,
  });
  location.hash = id;
  $("channel-id").value = id;
  $("channel-title").textContent = id;
  $("message-list").replaceChildren();
  $("thread").hidden = true;
  $("older-state").textContent = "";
  $("messages").dataset.loaded = "false";
  rememberChannel(id);
  runStream(state.generation);
}

// The stream's first event names where it starts (the channel's version in Postgres); the newest
// page is loaded only after it, so any change committed in between comes by the stream.
async function loadNewestPage({ resumeStreamFromPage = false } = {}) {
  const generation = state.generation;
  state.loadingPage = true;
  const pagePath = channelPath(`/messages?limit=${PAGE_SIZE}`);
  const readPath = channelPath("/read");
  try {
    const [{ json: page }, { json: marker }] = await Promise.all([
      withRetry(() => api("GET", pagePath)),
      withRetry(() => api("GET", readPath)),
    ]);
    if (!stillCurrent(generation)) return;
    const firstUnread = page.items.find((m) => m.seq > marker.last_read_seq && m.author_id !== state.userId);
    state.firstUnreadSeq = firstUnread ? firstUnread.seq : null;
    state.lastMarkedSeq = marker.last_read_seq;
    showUnread(marker.unread);
    $("unread").dataset.initial = String(marker.unread);
    takePage(page);
    state.pageLoaded = true;
    if (resumeStreamFromPage && state.lastEventId === null) state.lastEventId = String(page.channel.version);
    $("messages").dataset.loaded = "true";
    render({ toBottom: true });
    markRead();
    maybeLoadOlder();
  } catch (error) {
    if (stillCurrent(generation)) showError(error);
  } finally {
    if (stillCurrent(generation)) state.loadingPage = false;
  }
}

function takePage(page) {
  for (const message of page.items) upsert(message);
  const roots = page.items.filter((m) => !m.parent_id).map((m) => m.seq);
  if (roots.length) state.oldestShownSeq = Math.min(state.oldestShownSeq ?? Infinity, ...roots);
  state.hasBefore = page.page.has_before;
  state.before = page.page.before;
  $("older-state").textContent = state.hasBefore ? "" : "the beginning of the channel";
}

// Infinite scroll: the next older page when the top of the list comes into view.
async function loadOlder() {
  if (state.loadingOlder || !state.hasBefore || !state.pageLoaded || Date.now() < state.olderPausedUntil) return;
  const generation = state.generation;
  state.loadingOlder = true;
  $("older-state").textContent = "loading older messages…";
  let failed = false;
  try {
    const path = channelPath(`/messages?limit=${PAGE_SIZE}&before=${encodeURIComponent(state.before)}`);
    const { json: page } = await withRetry(() => api("GET", path));
    if (!stillCurrent(generation)) return;
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    takePage(page);
    render({ keepOffsetFromBottom: fromBottom });
  } catch (error) {
    if (!stillCurrent(generation)) return;
    // Not at once again (a 400 would repeat forever): the next scroll after a pause tries again.
    failed = true;
    state.olderPausedUntil = Date.now() + 5000;
    showError(error);
    $("older-state").textContent = "";
  } finally {
    if (stillCurrent(generation)) state.loadingOlder = false;
  }
  if (!failed && stillCurrent(generation)) maybeLoadOlder();
}

function maybeLoadOlder() {
  if ($("messages").scrollTop < 80) loadOlder();
}

// ---------------------------------------------------------------------------------------------
// The live stream: server-sent events read with fetch, so the token goes in the Authorization
// header (Kong reads it only there), and resumed with Last-Event-ID after any break.

async function runStream(generation) {
  const channel = state.channelId;
  const streamPath = channelPath("/stream");
  let backoff = 1000;
  while (stillCurrent(generation) && state.token) {
    const controller = new AbortController();
    state.streamAbort = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
      if (state.lastEventId !== null) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch(streamPath, { headers, signal: controller.signal, cache: "no-store" });
      if (!response.ok) {
        const error = new ApiError(response.status, await response.json().catch(() => null));
        if (error.status === 410) {
          // The channel is behind the position we hold (say, a restored database): start over.
          openChannel(channel);
          return;
        }
        if ([401, 403, 404].includes(error.status)) {
          setStreamState("closed", "offline");
          showError(error);
          return;
        }
        throw error; // 429, 503: try again later
      }
      setStreamState("live", "live");
      backoff = 1000;
      await readEvents(response.body, (event) => onStreamEvent(generation, event));
    } catch (error) {
      if (controller.signal.aborted || !stillCurrent(generation)) return;
      if (error instanceof ApiError) showError(error);
    }
    if (!stillCurrent(generation)) return;
    if (!state.pageLoaded && state.lastEventId === null && !state.loadingPage) {
      // The stream could not open (429: this user's streams are all in use, 503: the pod is
      // full): show the channel anyway, and let the stream resume from that page's version.
      loadNewestPage({ resumeStreamFromPage: true });
    }
    setStreamState("reconnecting", "reconnecting…");
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 8000);
  }
}

// Splits a text/event-stream body into events ({event, data, id}); comments (heartbeats, the
// goodbye on shutdown) are skipped. An event with only an id (the stream's start) counts too.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: "message", data: [], id: null };
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
      if (event.id !== null || event.data.length) onEvent(event);
    }
  }
}

function onStreamEvent(generation, event) {
  if (!stillCurrent(generation)) return;
  if (event.data.length) {
    const change = JSON.parse(event.data.join("\n"));
    upsert(change.message);
    if (state.pageLoaded) {
      render({});
      markRead();
      if (change.message.author_id !== state.userId) refreshUnreadCounts();
    }
  }
  if (event.id !== null) {
    const first = state.lastEventId === null;
    state.lastEventId = event.id;
    if (first) loadNewestPage();
  }
}

// ---------------------------------------------------------------------------------------------
// The local copy: one message per id, the highest version wins

function upsert(message) {
  const known = state.messages.get(message.id);
  if (!known || message.version >= known.version) state.messages.set(message.id, message);
}

// ---------------------------------------------------------------------------------------------
// Rendering

// Whether a scrolled list shows its end (within a line): new items then keep it scrolled down,
// and what it shows counts as read.
const nearBottom = (box) => box.scrollHeight - box.scrollTop - box.clientHeight < 40;

function render({ toBottom = false, keepOffsetFromBottom = null }) {
  const box = $("messages");
  const atBottom = nearBottom(box);
  const all = [...state.messages.values()];
  // A change by the stream to a root older than the loaded pages (an edit, a reaction) waits in
  // the map until scrolling back reaches it: shown now, it would sit above a gap.
  const oldest = state.hasBefore ? (state.oldestShownSeq ?? 0) : 0;
  const roots = all.filter((m) => !m.parent_id && m.seq >= oldest).sort((a, b) => a.seq - b.seq);
  syncList($("message-list"), roots.concat(pendingItems(null)), false);
  if (keepOffsetFromBottom !== null) box.scrollTop = box.scrollHeight - keepOffsetFromBottom;
  else if (toBottom || atBottom) box.scrollTop = box.scrollHeight;
  renderThread(all);
}

function renderThread(all) {
  if (!state.threadRoot) return;
  const root = state.messages.get(state.threadRoot);
  syncList($("thread-root"), root ? [root] : [], true);
  const replies = all.filter((m) => m.parent_id === state.threadRoot).sort((a, b) => a.seq - b.seq);
  const box = $("thread-messages");
  const atBottom = nearBottom(box);
  syncList(box, replies.concat(pendingItems(state.threadRoot)), true);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// Messages being sent, shown greyed until the service answers.
function pendingItems(parentId) {
  return state.pending
    .filter((p) => p.channel === state.channelId && (p.body.parent_id ?? null) === parentId)
    .map((p) => ({ id: `pending-${p.key}`, pending: p, content: p.body.content, version: p.failed ? -1 : 0 }));
}

// Puts one element per message in `list`, in order, reusing the elements already there (so the
// scroll position and an open edit survive) and rebuilding only those whose version changed.
function syncList(list, messages, inThread) {
  const wanted = new Set(messages.map((m) => m.id));
  for (const element of [...list.children]) if (!wanted.has(element.dataset.id)) element.remove();
  const existing = new Map([...list.children].map((e) => [e.dataset.id, e]));
  let previous = null;
  for (const message of messages) {
    let element = existing.get(message.id);
    const editing = state.editing?.id === message.id ? `${state.editing.changedTo ?? ""}` : "-";
    const stamp = `${message.version}|${editing}|${message.seq === state.firstUnreadSeq}|${reactionStamp(message)}`;
    if (!element || element.dataset.stamp !== stamp) {
      const fresh = messageElement(message, inThread);
      fresh.dataset.stamp = stamp;
      if (element) element.replaceWith(fresh);
      element = fresh;
    }
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (element !== expected) list.insertBefore(element, expected);
    previous = element;
  }
}

const reactionStamp = (message) =>
  Object.keys(message.reactions ?? {})
    .concat(QUICK_EMOJI)
    .filter((e) => state.myReactions.has(`${message.id} ${e}`))
    .join(",");

function messageElement(message, inThread) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.id = message.id;
  if (message.pending) {
    const pending = message.pending;
    item.classList.add("pending", "mine");
    item.append(textElement("div", "content", message.content));
    if (!pending.failed) {
      item.append(textElement("div", "meta", "sending…"));
      return item;
    }
    // Not sent after every retry; it may still have arrived: Retry sends it with the same key,
    // so the service stores it once either way.
    item.classList.add("failed");
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(
      textElement("span", "meta", "not sent"),
      actionButton("Retry", () => deliver(pending), "retry-send"),
      actionButton("Discard", () => discard(pending), "discard-send"),
    );
    item.append(actions);
    return item;
  }
  item.dataset.seq = String(message.seq);
  item.dataset.version = String(message.version);
  const mine = message.author_id === state.userId;
  item.classList.toggle("mine", mine);
  item.classList.toggle("deleted", Boolean(message.deleted_at));
  if (message.seq === state.firstUnreadSeq && !inThread) {
    const divider = textElement("div", "unread-divider", "new messages");
    item.append(divider);
  }

  const meta = document.createElement("div");
  meta.className = "meta";
  meta.append(
    textElement("span", "author", mine ? "you" : message.author_id.slice(0, 8)),
    textElement("time", "time", new Date(message.created_at).toLocaleString()),
  );
  if (message.edited_at && !message.deleted_at) meta.append(textElement("span", "edited", "(edited)"));
  item.append(meta);

  if (state.editing?.id === message.id && !message.deleted_at) {
    item.append(editForm(message));
  } else {
    const text = message.deleted_at ? "this message was deleted" : message.content;
    item.append(textElement("div", "content", text));
  }
  if (message.deleted_at) return item;

  const actions = document.createElement("div");
  actions.className = "actions";
  const reactions = message.reactions ?? {};
  const emoji = Object.keys(reactions).concat(QUICK_EMOJI.filter((e) => !(e in reactions)));
  for (const e of emoji) {
    const count = reactions[e] ?? 0;
    const button = actionButton(count ? `${e} ${count}` : e, () => toggleReaction(message, e));
    button.classList.add("reaction");
    button.classList.toggle("reacted", state.myReactions.has(`${message.id} ${e}`));
    button.dataset.emoji = e;
    button.dataset.count = String(count);
    actions.append(button);
  }
  if (!inThread) {
    const replies = message.reply_count ?? 0;
    actions.append(actionButton(replies ? `Reply (${replies})` : "Reply", () => openThread(message.id), "reply"));
  }
  if (mine) actions.append(actionButton("Edit", () => startEdit(message.id), "edit"));
  if (mine || state.roles.includes("moderator")) {
    actions.append(actionButton("Delete", () => deleteMessage(message), "delete"));
  }
  item.append(actions);
  return item;
}

function textElement(tag, className, text) {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text; // never innerHTML: content is whatever users typed
  return element;
}

function actionButton(label, onClick, className = "") {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  if (className) button.className = className;
  button.addEventListener("click", onClick);
  return button;
}

// ---------------------------------------------------------------------------------------------
// Read markers: what is on screen at the bottom of the timeline counts as read

let markTimer = null;
function markRead() {
  if (!state.pageLoaded || document.visibilityState !== "visible") return;
  const box = $("messages");
  if (!nearBottom(box)) return;
  const highest = Math.max(0, ...[...state.messages.values()].map((m) => m.seq));
  if (highest <= state.lastMarkedSeq) return;
  const generation = state.generation;
  const path = channelPath("/read");
  clearTimeout(markTimer);
  markTimer = setTimeout(async () => {
    try {
      const { json } = await api("PUT", path, { body: { seq: highest } });
      if (!stillCurrent(generation)) return;
      state.lastMarkedSeq = json.last_read_seq;
      showUnread(json.unread);
      refreshUnreadCounts();
    } catch (error) {
      if (stillCurrent(generation)) showError(error);
    }
  }, 500);
}

// ---------------------------------------------------------------------------------------------
// Writing

function send(content, parentId) {
  if (!content.trim()) return;
  const body = { content };
  if (parentId) body.parent_id = parentId;
  // One key for every attempt of this message, the Retry button's included.
  const pending = { key: uuid4(), channel: state.channelId, path: channelPath("/messages"), body, failed: false };
  state.pending.push(pending);
  deliver(pending);
}

async function deliver(pending) {
  pending.failed = false;
  render({ toBottom: !pending.body.parent_id });
  try {
    const { json } = await withRetry(() =>
      api("POST", pending.path, { body: pending.body, headers: { "Idempotency-Key": pending.key } }),
    );
    state.pending = state.pending.filter((p) => p !== pending);
    if (pending.channel === state.channelId) upsert(json);
  } catch (error) {
    pending.failed = true;
    showError(error);
  }
  render({ toBottom: !pending.body.parent_id });
}

function discard(pending) {
  state.pending = state.pending.filter((p) => p !== pending);
  render({});
}

// The edit keeps the version and text it started from: a change that arrives meanwhile (by the
// stream) rebuilds the form with the user's draft, and the save, made against that first version,
// gets a 412 rather than silently overwriting the other change.
function startEdit(id) {
  const message = state.messages.get(id);
  state.editing = { id, version: message.version, startedFrom: message.content, draft: message.content };
  render({});
  document.querySelector(`[data-id="${id}"] .edit-input`)?.focus();
}

function editForm(message) {
  const editing = state.editing;
  const form = document.createElement("form");
  form.className = "edit-form";
  const input = document.createElement("input");
  input.className = "edit-input";
  input.value = editing.draft;
  input.addEventListener("input", () => (editing.draft = input.value));
  const save = actionButton("Save", () => form.requestSubmit(), "save-edit");
  form.append(input, save, actionButton("Cancel", () => finishEdit(), "cancel-edit"));
  if (editing.changedTo !== undefined) {
    form.append(textElement("div", "edit-conflict meta", `changed meanwhile to: ${editing.changedTo}`));
  }
  const generation = state.generation;
  const path = channelPath(`/messages/${message.id}`);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (save.disabled) return; // one save at a time
    save.disabled = true;
    try {
      // Reactions and replies change a message's version too, not its text: when only those
      // changed since the edit started, the save is made again against the new version.
      for (let attempt = 1; ; attempt++) {
        try {
          const { json } = await api("PATCH", path, {
            body: { content: editing.draft },
            headers: { "If-Match": `"${editing.version}"` },
          });
          if (!stillCurrent(generation)) return;
          upsert(json);
          finishEdit();
          return;
        } catch (error) {
          if (error.status !== 412 || attempt === 3) throw error;
          const { json: current } = await api("GET", path);
          if (!stillCurrent(generation)) return;
          upsert(current);
          if (current.content !== editing.startedFrom || current.deleted_at) {
            // Someone else's text: show it, keep the draft; a second Save overwrites knowingly.
            editing.version = current.version;
            editing.startedFrom = current.content;
            editing.changedTo = current.content;
            throw error;
          }
          editing.version = current.version;
        }
      }
    } catch (error) {
      if (!stillCurrent(generation)) return;
      showError(error);
      save.disabled = false;
      render({});
    }
  });
  return form;
}

function finishEdit() {
  state.editing = null;
  render({});
}

async function deleteMessage(message) {
  const generation = state.generation;
  const path = channelPath(`/messages/${message.id}`);
  try {
    await api("DELETE", path);
    // The stream brings the tombstone too; this shows it without waiting.
    const { json } = await api("GET", path);
    if (!stillCurrent(generation)) return;
    upsert(json);
    render({});
  } catch (error) {
    if (stillCurrent(generation)) showError(error);
  }
}

// Adds the caller's reaction, or removes it when they have it. A PUT that leaves the message's
// version as it was means the reaction was already there (PUT is idempotent): then it is removed.
async function toggleReaction(message, emoji) {
  const key = `${message.id} ${emoji}`;
  const generation = state.generation;
  const path = channelPath(`/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`);
  try {
    let answer;
    if (state.myReactions.has(key)) {
      answer = (await api("DELETE", path)).json;
      state.myReactions.delete(key);
    } else {
      const known = state.messages.get(message.id);
      answer = (await api("PUT", path)).json;
      if (known && answer.version === known.version) {
        answer = (await api("DELETE", path)).json;
      } else {
        state.myReactions.add(key);
      }
    }
    if (!stillCurrent(generation)) return;
    upsert(answer);
    render({});
  } catch (error) {
    if (stillCurrent(generation)) showError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Threads: the replies to one root, in a side panel

async function openThread(rootId) {
  const generation = state.generation;
  state.threadRoot = rootId;
  $("thread").hidden = false;
  $("thread-messages").replaceChildren();
  render({});
  try {
    // Replies page like the timeline: walk back from the newest page.
    let path = channelPath(`/messages/${rootId}/replies?limit=100`);
    for (;;) {
      const { json: page } = await withRetry(() => api("GET", path));
      if (!stillCurrent(generation) || state.threadRoot !== rootId) return;
      for (const message of page.items) upsert(message);
      if (!page.page.has_before) break;
      path = channelPath(`/messages/${rootId}/replies?limit=100&before=${encodeURIComponent(page.page.before)}`);
    }
    render({});
    $("thread-messages").scrollTop = $("thread-messages").scrollHeight;
  } catch (error) {
    if (stillCurrent(generation)) showError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring the page

function submitOnEnter(textarea, form) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

async function start() {
  $("error").addEventListener("click", () => ($("error").hidden = true));
  $("sign-out").addEventListener("click", signOut);
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      signIn($("token").value);
    } catch (error) {
      showError(`that token cannot be read: ${error.message}`);
    }
  });
  $("dev-token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      signIn(await fetchDevToken($("dev-user-id").value.trim(), $("dev-moderator").checked));
    } catch (error) {
      showError(error);
    }
  });
  $("open-channel-form").addEventListener("submit", (event) => {
    event.preventDefault();
    openChannel($("channel-id").value);
  });
  $("new-channel").addEventListener("click", () => openChannel(uuid4()));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("message-input");
    send(input.value, null);
    input.value = "";
  });
  $("reply-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("reply-input");
    send(input.value, state.threadRoot);
    input.value = "";
  });
  submitOnEnter($("message-input"), $("composer"));
  submitOnEnter($("reply-input"), $("reply-composer"));
  $("close-thread").addEventListener("click", () => {
    state.threadRoot = null;
    $("thread").hidden = true;
  });
  $("messages").addEventListener("scroll", () => {
    maybeLoadOlder();
    markRead();
  });
  document.addEventListener("visibilitychange", markRead);
  setInterval(() => state.token && refreshUnreadCounts(), 15000);

  // The development sign-in shows only when the service offers it (DEV_TOKENS).
  try {
    const { json } = await api("GET", "config.json");
    $("dev-token-form").hidden = !json.dev_tokens;
  } catch {
    $("dev-token-form").hidden = true;
  }
  const saved = sessionStorage.getItem("token");
  if (saved) {
    try {
      signIn(saved);
    } catch {
      sessionStorage.removeItem("token");
    }
  }
}

start();
