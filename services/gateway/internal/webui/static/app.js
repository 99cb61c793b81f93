// Bachata demo chat page. Plain JavaScript modules, no framework: the
// client protocol is handled by the TypeScript SDK (./sdk/, compiled from
// libs/sdk-ts by `make webui`), and this file keeps the page's state and
// draws it.
//
// - Sign-in: with a name through the gateway's development endpoint
//   POST /dev/token (BACHATA_DEV_TOKENS, for development only), or with a
//   token pasted by hand.
// - State per user in localStorage: contacts, rooms and every conversation,
//   so a reload shows the history (the server delivers only new messages).
//   An incoming message is stored before the handler returns, and the SDK
//   acks it (200) only then.
// - Ticks on my messages: … waiting, ✓ on 100 (queued for every recipient
//   device), ✓✓ on 300 (a device of the recipient has it).
// - Presence dots for contacts, a typing indicator both ways (direct
//   conversations only: the server's typing route is for users), and a
//   banner while the connection is being re-established.

import { BachataClient, newId } from "./sdk/index.js";

const STORE = "bachata-web:v1";
const SESSION = `${STORE}:session`;
const SYSTEM = "system";
const MAX_PER_CONV = 500;
const TYPING_SEND_EVERY_MS = 3000; // resend "typing" while typing goes on
const TYPING_IDLE_MS = 4000; // say "stopped" after this long without a key
const TYPING_SHOW_MS = 6000; // forget a peer's "typing" after this long
const BANNER_DELAY_MS = 1500; // the first connection gets this long before a banner
const STATUS_RANK = { pending: 0, sent: 1, delivered: 2 };

const $ = (id) => document.getElementById(id);

/** config comes from the gateway: its server name, and whether dev sign-in is on. */
let config = { serverName: "localhost", devTokens: false };
/** me is the signed-in user: { user, username, mode: "dev" | "token" }. */
let me = null;
/** client is the SDK's client while signed in. */
let client = null;
/** state is what is kept in localStorage for me. */
let state = null;
/** active is the open conversation: a user or room entity ID. */
let active = null;
/** presence holds the last presence event per user. */
const presence = new Map();
/** typingFrom maps a user to when their typing indicator lapses. */
const typingFrom = new Map();
/** owner maps the id of a message I sent to its conversation. */
const owner = new Map();
let connState = "idle";
let everOpen = false;
let bannerTimer;
let tokenCache;
let typingTo = null;
let typingSentAt = 0;
let typingIdle;
let renderQueued = false;
/** pendingRooms are the rooms of a sign-in, kept until the state is loaded. */
let pendingRooms = [];

// ---- start -----------------------------------------------------------------

async function start() {
  try {
    const res = await fetch("/ui/config.json", { cache: "no-store" });
    if (res.ok) config = { ...config, ...(await res.json()) };
  } catch {
    // Keep the defaults; sign-in with a token still works.
  }
  bindUI();
  const saved = readJSON(localStorage, SESSION);
  if (saved && saved.user && (saved.mode === "dev" ? config.devTokens : sessionStorage.getItem(tokenKey(saved.user)))) {
    me = saved;
    enterChat();
  } else {
    showSignIn(saved?.username ?? "");
  }
}

// ---- sign-in ---------------------------------------------------------------

function showSignIn(name, error = "") {
  $("chat").hidden = true;
  $("signin").hidden = false;
  hideBanner();
  $("signin-name").value = name;
  $("signin-error").textContent = error;
  const box = $("signin-token-box");
  if (!config.devTokens) {
    box.open = true;
    box.querySelector("summary").hidden = true;
    $("signin-name").required = false;
    $("signin-name").placeholder = "alice (used when the token is not a JWT)";
    document.querySelector(".hint.warn").hidden = true;
  }
  (config.devTokens ? $("signin-name") : $("signin-token")).focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const name = $("signin-name").value.trim().toLowerCase();
  const token = $("signin-token").value.trim();
  const err = $("signin-error");
  err.textContent = "";
  $("signin-submit").disabled = true;
  try {
    if (token) {
      const sub = jwtClaims(token)?.sub;
      const username = typeof sub === "string" ? sub : name;
      if (!validName(username)) throw new Error("Enter the name the token is for.");
      me = { user: userId(username), username, mode: "token" };
      sessionStorage.setItem(tokenKey(me.user), token);
    } else {
      if (!validName(name)) throw new Error("Use lowercase letters, digits and . _ = - / only.");
      if (!config.devTokens) throw new Error("This gateway has no development sign-in: paste a token.");
      const minted = await mintToken(name);
      me = { user: minted.user, username: minted.username, mode: "dev" };
    }
    localStorage.setItem(SESSION, JSON.stringify(me));
    enterChat();
  } catch (e) {
    err.textContent = e instanceof Error ? e.message : String(e);
  } finally {
    $("signin-submit").disabled = false;
  }
}

/** mintToken asks the gateway's development endpoint for a token. */
async function mintToken(username) {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: username }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 404 || res.status === 405) throw new Error("This gateway has no development sign-in: paste a token.");
    throw new Error(body.error ? `Sign-in refused: ${body.error}` : `Sign-in failed (HTTP ${res.status}).`);
  }
  tokenCache = { token: body.token, expiresAt: body.expiresAt };
  if (state) for (const r of body.rooms ?? []) addRoom(r);
  else pendingRooms = body.rooms ?? [];
  return body;
}

/** tokenSource gives the SDK a token before every connection attempt. */
async function tokenSource({ refresh }) {
  if (me.mode === "token") {
    const token = sessionStorage.getItem(tokenKey(me.user)) ?? "";
    const exp = jwtClaims(token)?.exp;
    if (typeof exp === "number" && exp * 1000 < Date.now()) {
      // A pasted token cannot be renewed here: back to the sign-in form.
      const name = me.username;
      setTimeout(() => {
        signOut();
        showSignIn(name, "The token has expired: sign in again.");
      });
      throw new Error("token expired");
    }
    return token;
  }
  if (!refresh && tokenCache && tokenCache.expiresAt - 60_000 > Date.now()) return tokenCache.token;
  return (await mintToken(me.username)).token;
}

function signOut() {
  stopTyping();
  const c = client;
  client = null;
  c?.close();
  if (me) sessionStorage.removeItem(tokenKey(me.user));
  localStorage.removeItem(SESSION);
  const name = me?.username ?? "";
  me = null;
  state = null;
  active = null;
  tokenCache = undefined;
  presence.clear();
  typingFrom.clear();
  owner.clear();
  everOpen = false;
  showSignIn(name);
}

// ---- chat ------------------------------------------------------------------

function enterChat() {
  state = loadState(me.user);
  for (const r of pendingRooms) addRoom(r);
  pendingRooms = [];
  for (const [conv, msgs] of Object.entries(state.convs)) {
    for (const m of msgs) if (m.mine) owner.set(m.id, conv);
  }
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("me-name").textContent = me.username;
  $("me-name").title = me.user;
  active = state.active && isKnown(state.active) ? state.active : null;
  render();

  const device = deviceFor(me.user);
  const c = new BachataClient({
    url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`,
    token: tokenSource,
    device,
    storage: localStorage,
    storageKey: `${STORE}:${me.user}:${device}:sdk`,
    backoff: { initialMs: 300, maxMs: 8000, factor: 2, jitter: 0.5 },
  });
  client = c;
  c.on("message", onMessage);
  c.on("received", ({ id }) => setStatus(id, "sent"));
  c.on("delivered", ({ id }) => setStatus(id, "delivered"));
  c.on("presence", (p) => {
    presence.set(p.user, p);
    scheduleRender();
  });
  c.on("typing", onTyping);
  c.on("state", (s) => onState(c, s));
  c.on("reconnecting", ({ attempt, delayMs }) => {
    if (c === client && everOpen) showReconnecting(attempt, delayMs);
  });
  c.on("closed", (info) => onClosed(c, info));
  c.on("error", (e) => console.warn(e));
  if (state.contacts.length > 0) c.subscribePresence(state.contacts).catch((e) => console.warn(e));
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => {
    if (c === client && connState !== "open" && connState !== "closed") showBanner("Connecting…", "Retry now", () => c.reconnect());
  }, BANNER_DELAY_MS);
  c.connect().catch(() => {}); // the closed event tells why
}

/** onMessage stores a data message; the SDK acks it once this returns. */
function onMessage(m) {
  if (m.type !== "direct" && m.type !== "group") return; // not for this page: acked, not shown
  const mine = m.from === me.user;
  let conv;
  if (m.type === "group") conv = m.dest;
  else if (!m.from) conv = SYSTEM;
  else conv = mine ? userId(m.dest ?? "") : m.from;
  if (!conv) return;
  if (m.type === "group") addRoom(conv);
  else if (conv !== SYSTEM) addContact(conv);
  const msgs = (state.convs[conv] ??= []);
  if (msgs.some((x) => x.id === m.id && x.from === (m.from ?? ""))) return; // a redelivery after a reload
  msgs.push({
    id: m.id,
    from: m.from ?? "",
    time: m.time ?? Date.now(),
    text: textOf(m.data),
    mine,
    ...(mine ? { status: "sent" } : {}),
  });
  trim(msgs);
  if (m.from) typingFrom.delete(m.from);
  if (!mine && (conv !== active || document.hidden)) state.unread[conv] = (state.unread[conv] ?? 0) + 1;
  save();
  scheduleRender();
}

function onTyping({ from, typing }) {
  if (!from) return;
  if (typing) {
    typingFrom.set(from, Date.now() + TYPING_SHOW_MS);
    setTimeout(scheduleRender, TYPING_SHOW_MS + 50);
  } else {
    typingFrom.delete(from);
  }
  scheduleRender();
}

function onState(c, s) {
  if (c !== client) return;
  connState = s;
  if (s === "open") {
    everOpen = true;
    hideBanner();
  }
  scheduleRender();
}

function showReconnecting(attempt, delayMs) {
  const text = navigator.onLine === false
    ? "You are offline. Messages are kept and sent when the connection is back."
    : delayMs >= 1000
      ? `Connection lost. Reconnecting in ${Math.round(delayMs / 1000)} s (attempt ${attempt})…`
      : "Connection lost. Reconnecting…";
  showBanner(text, "Retry now", () => client?.reconnect());
}

function onClosed(c, info) {
  if (c !== client) return; // signed out
  if (info.code === 1000 && info.reason === "replaced") {
    showBanner("This account is open in another tab or window.", "Use here", () => {
      hideBanner();
      c.connect().catch(() => {});
    });
  } else if (info.error && info.error.reason === "refused") {
    const name = me.username;
    signOut();
    showSignIn(name, `The gateway refused the sign-in (${info.error.message.replace(/^bachata: /, "")}).`);
  } else {
    showBanner(`Disconnected (${info.code} ${info.reason}).`, "Reconnect", () => c.connect().catch(() => {}));
  }
}

// ---- sending ----------------------------------------------------------------

function send(ev) {
  ev.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text || !active || !client || active === SYSTEM) return;
  input.value = "";
  stopTyping();
  const conv = active;
  const id = newId();
  const msg = { id, from: me.user, time: Date.now(), text, mine: true, status: "pending" };
  const msgs = (state.convs[conv] ??= []);
  msgs.push(msg);
  trim(msgs);
  owner.set(id, conv);
  save();
  scheduleRender();
  client.send(isRoom(conv) ? "group" : "direct", conv, { text }, { id }).catch((e) => {
    if (!state || !client) return; // signed out meanwhile
    msg.status = "failed";
    msg.error = e && typeof e.text === "string" ? `${e.text} (${e.code})` : String(e?.message ?? e);
    save();
    scheduleRender();
  });
}

/** setStatus moves one of my messages forward: pending → sent → delivered. */
function setStatus(id, status) {
  const conv = owner.get(id);
  const msg = conv && state?.convs[conv]?.find((m) => m.id === id && m.mine);
  if (!msg) return;
  if (msg.status !== "failed" && (STATUS_RANK[msg.status] ?? -1) >= STATUS_RANK[status]) return;
  msg.status = status;
  delete msg.error;
  save();
  scheduleRender();
}

function onComposerInput() {
  if (!active || isRoom(active) || active === SYSTEM || connState !== "open") return;
  if ($("composer-input").value.trim() === "") {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (typingTo !== active || now - typingSentAt > TYPING_SEND_EVERY_MS) {
    if (typingTo && typingTo !== active) stopTyping();
    typingTo = active;
    typingSentAt = now;
    client.typing(active, true).catch(() => {});
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingTo && client) client.typing(typingTo, false).catch(() => {});
  typingTo = null;
}

// ---- contacts and rooms -------------------------------------------------------

function addContact(id) {
  if (id === me.user || state.contacts.includes(id)) return;
  state.contacts.push(id);
  save();
  client?.subscribePresence([id]).catch((e) => console.warn(e));
  scheduleRender();
}

function addRoom(id) {
  if (state.rooms.includes(id)) return;
  state.rooms.push(id);
  save();
  scheduleRender();
}

function onAddContact(ev) {
  ev.preventDefault();
  const input = $("add-contact-name");
  const raw = input.value.trim().toLowerCase();
  const id = raw.startsWith("@") ? raw : userId(raw);
  if (!/^@[a-z0-9._=\-/]+@[^@\s]+$/.test(id)) {
    $("add-error").textContent = "Use a username (lowercase a-z 0-9 . _ = - /) or @user@server.";
    return;
  }
  if (id === me.user) {
    $("add-error").textContent = "That is you.";
    return;
  }
  $("add-error").textContent = "";
  input.value = "";
  addContact(id);
  open(id);
}

function onAddRoom(ev) {
  ev.preventDefault();
  const input = $("add-room-name");
  const raw = input.value.trim().toLowerCase().replace(/^!/, "");
  const id = raw.includes("@") ? `!${raw}` : `!${raw}@${config.serverName}`;
  if (!/^![a-z0-9._=\-/]+@[^@\s]+$/.test(id)) {
    $("add-error").textContent = "Use a room name (lowercase a-z 0-9 . _ = - /).";
    return;
  }
  $("add-error").textContent = "";
  input.value = "";
  addRoom(id);
  open(id);
}

function open(conv) {
  if (typingTo && typingTo !== conv) stopTyping();
  active = conv;
  state.active = conv;
  delete state.unread[conv];
  save();
  $("chat").classList.add("in-conv");
  render();
  $("composer-input").focus();
}

// ---- drawing ------------------------------------------------------------------

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  if (!state) return;
  const dot = $("conn-dot");
  dot.className = `dot ${connState === "open" ? "online" : ""}`;
  dot.title = `connection: ${connState}`;
  renderList($("contacts"), state.contacts.concat(state.convs[SYSTEM] ? [SYSTEM] : []), false);
  renderList($("rooms"), state.rooms, true);
  $("contacts-empty").hidden = state.contacts.length > 0;
  renderConversation();
  const unread = Object.values(state.unread).reduce((a, b) => a + b, 0);
  document.title = unread > 0 ? `(${unread}) Bachata` : "Bachata";
}

function renderList(ul, ids, rooms) {
  ul.replaceChildren(...ids.map((id) => {
    const li = el("li");
    const b = el("button", { type: "button", "data-conv": id });
    if (id === active) b.setAttribute("aria-current", "true");
    b.append(rooms ? el("span", { class: "room-mark", "aria-hidden": "true" }, "#") : presenceDot(id));
    const label = el("span", { class: "name" }, displayName(id));
    const msgs = state.convs[id];
    const last = msgs?.[msgs.length - 1];
    if (!rooms && isTyping(id)) label.append(el("span", { class: "preview typing" }, "typing…"));
    else if (last) label.append(el("span", { class: "preview" }, (last.mine ? "You: " : rooms ? `${displayName(last.from)}: ` : "") + last.text));
    b.append(label);
    const n = state.unread[id];
    if (n) b.append(el("span", { class: "badge", "aria-label": `${n} unread` }, String(n)));
    b.addEventListener("click", () => open(id));
    li.append(b);
    return li;
  }));
}

function presenceDot(id) {
  const p = presence.get(id);
  const cls = id === SYSTEM ? "none" : !p ? "unknown" : p.status === "online" ? "online" : "offline";
  return el("span", { class: `dot ${cls}`, "data-presence": p?.status ?? "unknown", title: p?.status ?? "" });
}

function renderConversation() {
  const has = active !== null;
  $("empty").hidden = has;
  $("messages").hidden = !has;
  $("composer").hidden = !has || active === SYSTEM;
  const head = $("conv-dot");
  if (!has) {
    $("conv-title").textContent = "Bachata";
    $("conv-sub").textContent = "";
    head.className = "dot none";
    $("typing").textContent = "";
    $("messages").replaceChildren();
    return;
  }
  const room = isRoom(active);
  $("conv-title").textContent = (room ? "#" : "") + displayName(active);
  const p = presence.get(active);
  head.className = room || active === SYSTEM ? "dot none" : presenceDot(active).className;
  head.dataset.presence = p?.status ?? "unknown";
  $("conv-sub").textContent = room
    ? active
    : active === SYSTEM
      ? "messages from the server"
      : !p
        ? active
        : p.status === "online"
          ? "online"
          : p.lastSeen
            ? `last seen ${when(p.lastSeen)}`
            : "offline";
  $("typing").textContent = !room && isTyping(active) ? `${displayName(active)} is typing…` : "";

  const list = $("messages");
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = [];
  let day = "";
  for (const m of state.convs[active] ?? []) {
    const d = new Date(m.time).toDateString();
    if (d !== day) {
      day = d;
      items.push(el("li", { class: "day" }, new Date(m.time).toLocaleDateString([], { weekday: "long", month: "short", day: "numeric" })));
    }
    items.push(renderMessage(m, room));
  }
  list.replaceChildren(...items);
  if (stick || items.length > 0 && list.dataset.conv !== active) list.scrollTop = list.scrollHeight;
  list.dataset.conv = active;
}

function renderMessage(m, room) {
  const li = el("li", { class: `msg ${m.mine ? "mine" : "theirs"}`, "data-id": m.id });
  const bubble = el("div", { class: "bubble" });
  if (room && !m.mine) bubble.append(el("span", { class: "from" }, displayName(m.from)));
  bubble.append(el("p", { class: "text" }, m.text));
  const meta = el("span", { class: "meta" }, el("time", { datetime: new Date(m.time).toISOString() }, clock(m.time)));
  if (m.mine) {
    const [glyph, title] = {
      pending: ["…", "sending"],
      sent: ["✓", "sent: queued for every device of the recipient"],
      delivered: ["✓✓", "delivered: a device of the recipient has it"],
      failed: ["!", "not sent"],
    }[m.status] ?? ["", ""];
    meta.append(el("span", { class: "ticks", "data-status": m.status, title, "aria-label": title }, glyph));
  }
  bubble.append(meta);
  if (m.status === "failed" && m.error) bubble.append(el("span", { class: "err" }, m.error));
  li.append(bubble);
  return li;
}

function showBanner(text, action, onAction) {
  clearTimeout(bannerTimer);
  $("banner-text").textContent = text;
  const b = $("banner-action");
  b.textContent = action;
  b.onclick = onAction;
  $("banner").hidden = false;
}

function hideBanner() {
  clearTimeout(bannerTimer);
  $("banner").hidden = true;
}

// ---- storage ------------------------------------------------------------------

function loadState(user) {
  const s = readJSON(localStorage, `${STORE}:${user}:state`) ?? {};
  return {
    contacts: Array.isArray(s.contacts) ? s.contacts : [],
    rooms: Array.isArray(s.rooms) ? s.rooms : [],
    convs: s.convs && typeof s.convs === "object" ? s.convs : {},
    unread: s.unread && typeof s.unread === "object" ? s.unread : {},
    active: typeof s.active === "string" ? s.active : null,
  };
}

function save() {
  if (!state || !me) return;
  const key = `${STORE}:${me.user}:state`;
  try {
    localStorage.setItem(key, JSON.stringify(state));
  } catch {
    // Over the quota: keep the newest half of every conversation and retry.
    for (const msgs of Object.values(state.convs)) msgs.splice(0, Math.floor(msgs.length / 2));
    localStorage.setItem(key, JSON.stringify(state));
  }
}

function deviceFor(user) {
  const key = `${STORE}:${user}:device`;
  let d = localStorage.getItem(key);
  if (!d) {
    d = `web-${newId().slice(0, 8)}`;
    localStorage.setItem(key, d);
  }
  return d;
}

function readJSON(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function trim(msgs) {
  if (msgs.length > MAX_PER_CONV) msgs.splice(0, msgs.length - MAX_PER_CONV);
}

// ---- small helpers ---------------------------------------------------------------

function bindUI() {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("add-contact").addEventListener("submit", onAddContact);
  $("add-room").addEventListener("submit", onAddRoom);
  $("composer").addEventListener("submit", send);
  $("composer-input").addEventListener("input", onComposerInput);
  $("back").addEventListener("click", () => {
    $("chat").classList.remove("in-conv");
    stopTyping();
  });
  // The browser knows before the socket does: drop the connection when it
  // goes offline (the banner shows), and reconnect at once when it is back.
  window.addEventListener("offline", () => client?.reconnect());
  window.addEventListener("online", () => client?.reconnect());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && active && state?.unread[active]) {
      delete state.unread[active];
      save();
      scheduleRender();
    }
  });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function isRoom(id) {
  return id.startsWith("!");
}

function isKnown(id) {
  return state.contacts.includes(id) || state.rooms.includes(id) || id === SYSTEM && !!state.convs[SYSTEM];
}

function isTyping(user) {
  const until = typingFrom.get(user);
  return until !== undefined && until > Date.now();
}

function validName(s) {
  return /^[a-z0-9._=\-/]+$/.test(s) && s.length <= 200;
}

/** userId completes a bare username with this server's name. */
function userId(s) {
  return s.startsWith("@") ? s : `@${s}@${config.serverName}`;
}

/** displayName is an entity ID without the server part when it is this server. */
function displayName(id) {
  if (id === SYSTEM) return "Server";
  if (!id) return "Server";
  const at = id.lastIndexOf("@");
  const server = at > 0 ? id.slice(at + 1) : "";
  const local = at > 0 ? id.slice(1, at) : id.slice(1);
  return server === config.serverName ? local : id;
}

function tokenKey(user) {
  return `${STORE}:${user}:token`;
}

/** jwtClaims are the claims of a JWT, read without checking them (the gateway does); null for other tokens. */
function jwtClaims(token) {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

function textOf(data) {
  if (data && typeof data === "object" && typeof data.text === "string") return data.text;
  if (typeof data === "string") return data;
  return JSON.stringify(data ?? null);
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function when(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? clock(ms) : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

start();
