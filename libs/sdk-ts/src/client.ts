import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { BachataClientError, BachataError } from "./errors.js";
import {
  OPEN,
  type WebSocketConstructor,
  type WebSocketLike,
  clearTimer,
  globalWebSocket,
  newId,
  setTimer,
  utf8,
} from "./host.js";
import { LRUSet } from "./lru.js";
import {
  CloseCode,
  DEFAULT_RETRY_CODES,
  type DataMessage,
  type ErrorReply,
  type IncomingMessage,
  type PresenceEvent,
  Transport,
  type TypingEvent,
  dataCanonical,
  parseErrorReply,
  sign,
  transportCanonical,
} from "./protocol.js";

/**
 * ConnectionState is where the client is:
 * - `idle`: constructed, connect() not called yet;
 * - `connecting`: a socket is opening, or open and waiting for the ready frame;
 * - `open`: ready received; messages flow;
 * - `reconnecting`: waiting out a backoff before the next attempt;
 * - `closed`: stopped for good, by close() or by a refusal (see the `closed` event).
 */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/**
 * StorageLike keeps the session key and the outgoing queue across restarts
 * of the application (a page reload). `window.localStorage` fits; so does
 * anything with these three methods, sync or async.
 */
export interface StorageLike {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/**
 * TokenSource gives a token for a connection attempt. `refresh` is true when
 * the previous token was refused (HTTP 401) or expired (close 4401): do not
 * return a cached one then.
 */
export type TokenSource = (ctx: { refresh: boolean }) => string | Promise<string>;

/** BachataClientOptions configure a BachataClient. Only `url` and `token` are required. */
export interface BachataClientOptions {
  /**
   * The gateway's WebSocket URL with its path, like `wss://chat.example.com/ws`.
   * Several URLs are tried in turn, moving to the next after each failed or
   * lost connection.
   */
  url: string | readonly string[];
  /**
   * The JWT (or your deployment's token). A function is called before every
   * connection attempt, so the client can reconnect after the token expired
   * (close 4401) or was refused (401) without your help.
   */
  token: string | TokenSource;
  /** This device's name, stable across reconnects (`a-z 0-9 . _ = - /`). Default `default`. */
  device?: string;
  /**
   * The WebSocket implementation. Default: the global WebSocket (browsers,
   * Node ≥ 22). In Node 20 pass the `ws` package's: `WebSocket` from `import { WebSocket } from "ws"`.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * Where the token goes: the `token` query parameter (default; the only
   * way in browsers) or an `Authorization: Bearer` header (Node with `ws`;
   * keeps the token out of access logs).
   */
  tokenIn?: "query" | "header";
  /** Delays between reconnects and between resends of a refused message. */
  backoff?: BackoffOptions;
  /**
   * The least pause before reconnecting after close 1008 (rate limit,
   * kicked) or HTTP 429 (too many devices), in ms. Default 30000.
   */
  policyPauseMs?: number;
  /** Keeps the session key and the outgoing queue across application restarts. */
  storage?: StorageLike;
  /** Prefix of the storage keys. Default `bachata:<device>`; include the user when several share a storage. */
  storageKey?: string;
  /**
   * How many messages may await their 100 at once. Default 1: strict send
   * order even when a message is refused with a retryable code (the gateway
   * routes one connection's frames in order, so a larger window keeps order
   * too, except when a message is refused with 4290/5001/5002 while later
   * ones in the window are accepted).
   */
  maxInFlight?: number;
  /** Error codes the queue resends by itself with the same id. Default 4290, 5001, 5002. */
  retryCodes?: readonly number[];
  /** How many (from, id) pairs of handled messages are remembered to drop redeliveries. Default 10000. */
  dedupeSize?: number;
  /** The server's ephemeral types: delivered to online devices only, never acked. Default `["typing"]`. */
  ephemeralTypes?: readonly string[];
  /** Sign every frame with the session key (when the server requires signatures). Default false. */
  sign?: boolean;
  /** Ping after this long without a frame from the server, in ms; 0 turns it off. Default 25000. */
  pingIntervalMs?: number;
  /** Reconnect when nothing arrives this long after a ping, in ms. Default 10000. */
  pongTimeoutMs?: number;
  /** Give up on an attempt that has no ready frame after this long, in ms. Default 15000. */
  connectTimeoutMs?: number;
  /** The server's frame size limit in bytes; larger messages are refused locally. Default 65536. */
  maxFrameBytes?: number;
}

/** SendOptions adjust one send. */
export interface SendOptions {
  /** The message id; default a random UUID. Reuse one only to resend the same message. */
  id?: string;
}

/** SendResult is how a sent message was answered. */
export interface SendResult {
  id: string;
  /** For request/reply types (`app`, `handshake`): the reply's `data`. Absent for a 100. */
  reply?: unknown;
}

/** ReadyInfo comes with every ready frame. */
export interface ReadyInfo {
  sessionKey: string;
  /** True when the server kept the session key the client presented. */
  resumed: boolean;
}

/** DisconnectInfo describes a lost connection or a refused attempt. */
export interface DisconnectInfo {
  /** The close code (1006 when the connection dropped, or the attempt failed). */
  code: number;
  reason: string;
  /** The HTTP status when the gateway refused the upgrade (seen with `ws` only). */
  status?: number;
}

/** BachataEvents are the events of a BachataClient, by name. */
export interface BachataEvents {
  /** A connection is ready (after connect() and after every reconnect). */
  ready: (info: ReadyInfo) => void;
  /**
   * A data message for this device. The client acks it (200) after every
   * handler has returned (awaiting returned promises); if one throws or
   * rejects, the message is not acked and comes again later. A message
   * already handled is acked again but not handed over twice. Messages are
   * handed over one at a time, in order.
   */
  message: (msg: IncomingMessage) => void | Promise<void>;
  /** 100: the server queued a message you sent (also for messages restored from storage). */
  received: (info: { id: string }) => void;
  /** 300: the recipient got a message you sent. */
  delivered: (info: { id: string }) => void;
  /** A presence event for a user you subscribed to. */
  presence: (ev: PresenceEvent) => void;
  /** A typing indicator for you. */
  typing: (ev: TypingEvent) => void;
  /** Another ephemeral message (a type of `ephemeralTypes` other than `typing`). */
  ephemeral: (msg: IncomingMessage) => void;
  /**
   * An error no promise reports: an `:error` reply to a frame without a
   * pending send, a message handler that threw, a refusal, a storage failure.
   */
  error: (err: BachataError | BachataClientError) => void;
  /** A connection was lost, or an attempt failed. */
  disconnected: (info: DisconnectInfo) => void;
  /** The next attempt comes in delayMs. */
  reconnecting: (info: { attempt: number; delayMs: number }) => void;
  /**
   * The client stopped for good: close() was called, another connection of
   * this device replaced this one (1000 `replaced`), or the gateway refused
   * the client (400, 401, 403; 4401 with a fixed token). Messages not yet
   * answered stay queued, unless close() was called: connect() goes on.
   */
  closed: (info: DisconnectInfo & { error?: BachataClientError }) => void;
  /** The state changed. */
  state: (state: ConnectionState, prev: ConnectionState) => void;
}

interface Outgoing {
  id: string;
  type: string;
  dest: string | undefined;
  data: unknown;
  /** sent: written on the current connection, awaiting its answer. */
  sent: boolean;
  /** Resends after retryable errors. */
  retries: number;
  resolve: ((r: SendResult) => void) | undefined;
  reject: ((e: Error) => void) | undefined;
}

interface StoredOutgoing {
  id: string;
  type: string;
  dest?: string;
  data?: unknown;
}

/** Conn is one socket and what belongs to it. */
interface Conn {
  seq: number;
  ws: WebSocketLike;
  ready: boolean;
  /** Gone: closed, or abandoned by the client. */
  gone: boolean;
  lastRx: number;
  pingSentAt: number | undefined;
  status: number | undefined;
  readyTimer: unknown;
  /** The liveness check's timer. */
  pingTimer: unknown;
}

const MAX_USERS_PER_REQUEST = 1000;

/**
 * BachataClient is one device's connection to a Bachata suite: it connects
 * with a token, resumes its session across reconnects, keeps an outgoing
 * queue that resends until each message is accepted (100), acks incoming
 * messages after the application has handled them, drops redeliveries, and
 * keeps presence subscriptions across reconnects.
 */
export class BachataClient {
  private readonly opts: {
    urls: readonly string[];
    token: string | TokenSource;
    device: string;
    WebSocket: WebSocketConstructor;
    tokenIn: "query" | "header";
    backoff: Required<BackoffOptions>;
    policyPauseMs: number;
    storage: StorageLike | undefined;
    storageKey: string;
    maxInFlight: number;
    retryCodes: ReadonlySet<number>;
    ephemeralTypes: ReadonlySet<string>;
    sign: boolean;
    pingIntervalMs: number;
    pongTimeoutMs: number;
    connectTimeoutMs: number;
    maxFrameBytes: number;
  };
  private readonly events = new Emitter<BachataEvents>((err) => this.listenerFailed(err));
  private readonly seen: LRUSet;

  private stateValue: ConnectionState = "idle";
  private conn: Conn | undefined;
  private connSeq = 0;
  private urlIndex = 0;
  private attempt = 0;
  private refreshToken = false;
  private refusedAfterRefresh = false;
  private reconnectTimer: unknown;
  /** close() was called: sends are refused until connect(). */
  private userClosed = false;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  private sessionKeyValue: string | undefined;
  private resumedValue = false;

  private queue: Outgoing[] = [];
  private pumping = false;
  private pumpAgain = false;
  private holdTimer: unknown;

  private inbox: Promise<void> = Promise.resolve();

  private readonly watched = new Set<string>();
  private presenceRequests = new Map<string, { users: string[]; retries: number }>();
  private presenceWaiters: { users: Set<string>; resolve: () => void; reject: (e: Error) => void }[] = [];

  private loaded: Promise<void> | undefined;
  private storageChain: Promise<void> = Promise.resolve();

  constructor(options: BachataClientOptions) {
    const urls = typeof options.url === "string" ? [options.url] : [...options.url];
    if (urls.length === 0) throw new TypeError("bachata: url is required");
    const WS = options.WebSocket ?? globalWebSocket();
    if (!WS) {
      throw new TypeError('bachata: no global WebSocket here; pass one: new BachataClient({ WebSocket, ... }) with import { WebSocket } from "ws"');
    }
    const device = options.device ?? "default";
    this.opts = {
      urls,
      token: options.token,
      device,
      WebSocket: WS,
      tokenIn: options.tokenIn ?? "query",
      backoff: { ...DEFAULT_BACKOFF, ...definedOnly(options.backoff ?? {}) },
      policyPauseMs: options.policyPauseMs ?? 30_000,
      storage: options.storage,
      storageKey: options.storageKey ?? `bachata:${device}`,
      maxInFlight: Math.max(1, options.maxInFlight ?? 1),
      retryCodes: new Set(options.retryCodes ?? DEFAULT_RETRY_CODES),
      ephemeralTypes: new Set(options.ephemeralTypes ?? ["typing"]),
      sign: options.sign ?? false,
      pingIntervalMs: options.pingIntervalMs ?? 25_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      maxFrameBytes: options.maxFrameBytes ?? 65_536,
    };
    this.seen = new LRUSet(options.dedupeSize ?? 10_000);
  }

  // ---- public API ----------------------------------------------------------

  /** state is where the client is. */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** sessionKey is the key of the current (or last) session, from the ready frame. */
  get sessionKey(): string | undefined {
    return this.sessionKeyValue;
  }

  /** resumed says whether the last ready frame kept the session key presented. */
  get resumed(): boolean {
    return this.resumedValue;
  }

  /** pending lists the messages not answered yet, oldest first. */
  get pending(): readonly { id: string; type: string; dest?: string; data?: unknown }[] {
    return this.queue.map(storedForm);
  }

  /** on adds a listener and returns a function that removes it. */
  on<K extends keyof BachataEvents>(event: K, fn: BachataEvents[K]): () => void {
    return this.events.on(event, fn);
  }

  /** once adds a listener for one call. */
  once<K extends keyof BachataEvents>(event: K, fn: BachataEvents[K]): () => void {
    return this.events.once(event, fn);
  }

  /** off removes a listener. */
  off<K extends keyof BachataEvents>(event: K, fn: BachataEvents[K]): void {
    this.events.off(event, fn);
  }

  /**
   * connect starts connecting (and reconnecting, until close()) and resolves
   * at the first ready frame. It rejects only when the client stops for good
   * before that: close(), or a refusal (BachataClientError "refused"),
   * which the `closed` event reports too; so a connect() nobody awaits does
   * not make an unhandled rejection.
   * Register the `message` handler first: messages follow the ready frame.
   */
  connect(): Promise<void> {
    if (this.stateValue === "open") return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    p.catch(() => {});
    if (this.stateValue === "idle" || this.stateValue === "closed") {
      this.userClosed = false;
      this.attempt = 0;
      this.refusedAfterRefresh = false;
      this.setState("connecting");
      void this.load().then(() => {
        if (this.stateValue === "connecting" && !this.conn) void this.openSocket();
      });
    }
    return p;
  }

  /**
   * close stops the client for good: closes the socket (1000), stops
   * reconnecting, and rejects every pending send and presence subscription
   * with BachataClientError "closed". Messages not answered yet are dropped,
   * from storage too. connect() starts again.
   */
  close(): void {
    this.userClosed = true;
    const err = new BachataClientError("closed", "client closed");
    const queue = this.queue;
    this.queue = [];
    this.persistQueue();
    for (const e of queue) e.reject?.(err);
    for (const w of this.presenceWaiters) w.reject(err);
    this.presenceWaiters = [];
    this.presenceRequests.clear();
    this.stop({ code: CloseCode.Normal, reason: "client closed" }, err);
  }

  /**
   * reconnect drops the current connection and connects again at once:
   * call it when the network changed (a browser's `online` event).
   */
  reconnect(): void {
    if (this.stateValue === "idle" || this.stateValue === "closed") return;
    if (this.conn) {
      this.abandon(this.conn, { code: CloseCode.Normal, reason: "client reconnect" }, 0);
      return;
    }
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = undefined;
    void this.openSocket();
  }

  /**
   * send queues a data message and resolves when the server accepted it
   * (100), or with the reply for request/reply types (`app`, `handshake`).
   * Until then it is sent, and resent after every reconnect and after
   * retryable errors, with the same id, in order. It rejects with a
   * BachataError on any other `:error` reply, and with a BachataClientError
   * on close() or when the frame is too large. Ephemeral types (`typing`)
   * are written at once when connected, never queued; they resolve when
   * written and reject "not_connected" otherwise.
   */
  send(type: string, dest: string | undefined, data?: unknown, opts: SendOptions = {}): Promise<SendResult> {
    const id = opts.id ?? newId();
    if (this.opts.ephemeralTypes.has(type)) {
      return this.sendEphemeral({ id, type, dest, data }).then(() => ({ id }));
    }
    if (this.userClosed) return Promise.reject(new BachataClientError("closed", "client closed"));
    if (this.queue.some((e) => e.id === id)) {
      return Promise.reject(new TypeError(`bachata: a message with id ${id} is already pending`));
    }
    const tooLarge = this.checkSize({ id, type, dest, data });
    if (tooLarge) return Promise.reject(tooLarge);
    return new Promise<SendResult>((resolve, reject) => {
      this.queue.push({ id, type, dest, data, sent: false, retries: 0, resolve, reject });
      this.persistQueue();
      this.schedulePump();
    });
  }

  /**
   * typing tells dest that you are (or stopped) typing, with the ephemeral
   * `typing` type. Best effort: it resolves false when not connected.
   */
  async typing(dest: string, isTyping = true): Promise<boolean> {
    try {
      await this.sendEphemeral({ id: newId(), type: "typing", dest, data: { typing: isTyping } });
      return true;
    } catch (err) {
      if (err instanceof BachataClientError && err.reason === "not_connected") return false;
      throw err;
    }
  }

  /**
   * subscribePresence watches users (entity IDs or bare usernames) and
   * resolves once the current state of each has arrived as a `presence`
   * event. Subscriptions belong to a connection on the server, so the
   * client subscribes again after every reconnect (and the current states
   * come again). Rejects with a BachataError (4120, 4291) if refused; those
   * users are no longer watched then.
   */
  subscribePresence(users: readonly string[]): Promise<void> {
    if (users.length === 0) return Promise.resolve();
    if (this.userClosed) return Promise.reject(new BachataClientError("closed", "client closed"));
    for (const u of users) this.watched.add(u);
    const p = new Promise<void>((resolve, reject) => {
      this.presenceWaiters.push({ users: new Set(users), resolve, reject });
    });
    if (this.conn?.ready) void this.requestPresence("presence.subscribe", [...users]);
    return p;
  }

  /** unsubscribePresence stops watching users. */
  unsubscribePresence(users: readonly string[]): void {
    const gone = users.filter((u) => this.watched.delete(u));
    if (gone.length > 0 && this.conn?.ready) void this.requestPresence("presence.unsubscribe", gone);
  }

  /** watching lists the users whose presence is watched. */
  get watching(): readonly string[] {
    return [...this.watched];
  }

  // ---- connection ----------------------------------------------------------

  private setState(s: ConnectionState): void {
    const prev = this.stateValue;
    if (prev === s) return;
    this.stateValue = s;
    this.events.emit("state", s, prev);
  }

  private async openSocket(): Promise<void> {
    if (this.conn) return;
    this.setState("connecting");
    let token: string;
    try {
      token = await this.token();
    } catch (err) {
      this.events.emit("error", new BachataClientError("refused", "the token function failed", { cause: err }));
      this.scheduleReconnect(this.nextBackoff());
      return;
    }
    if (this.stateValue !== "connecting" || this.conn) return; // closed or reconnected meanwhile
    const base = this.opts.urls[this.urlIndex % this.opts.urls.length] ?? "";
    const params = [`device=${encodeURIComponent(this.opts.device)}`];
    if (this.sessionKeyValue) params.push(`session=${encodeURIComponent(this.sessionKeyValue)}`);
    if (this.opts.tokenIn === "query") params.push(`token=${encodeURIComponent(token)}`);
    const url = base + (base.includes("?") ? "&" : "?") + params.join("&");
    let ws: WebSocketLike;
    try {
      ws =
        this.opts.tokenIn === "header"
          ? new this.opts.WebSocket(url, undefined, { headers: { Authorization: `Bearer ${token}` } })
          : new this.opts.WebSocket(url);
    } catch (err) {
      // A malformed URL: retrying will not help.
      const e = new BachataClientError("refused", `cannot open ${base}`, { cause: err });
      this.stop({ code: CloseCode.Abnormal, reason: "bad url" }, e);
      return;
    }
    const conn: Conn = {
      seq: ++this.connSeq,
      ws,
      ready: false,
      gone: false,
      lastRx: Date.now(),
      pingSentAt: undefined,
      status: undefined,
      readyTimer: undefined,
      pingTimer: undefined,
    };
    this.conn = conn;
    ws.onopen = () => {};
    ws.onerror = () => {}; // a close event follows
    ws.onmessage = (ev) => this.onFrame(conn, ev.data);
    ws.onclose = (ev) => this.onClose(conn, { code: ev.code, reason: ev.reason });
    // The ws package reports a refused upgrade (401, 403, 429, 503…) with its
    // status; browsers only say the connection failed.
    const emitter = ws as unknown as { on?: (ev: string, fn: (req: unknown, res: { statusCode?: number }) => void) => void; terminate?: () => void };
    if (typeof emitter.on === "function") {
      emitter.on("unexpected-response", (_req, res) => {
        conn.status = res.statusCode;
        if (emitter.terminate) emitter.terminate();
        else ws.close();
      });
    }
    conn.readyTimer = setTimer(() => {
      if (!conn.ready && !conn.gone) this.abandon(conn, { code: CloseCode.Abnormal, reason: "no ready frame in time" });
    }, this.opts.connectTimeoutMs);
  }

  private async token(): Promise<string> {
    const t = this.opts.token;
    if (typeof t === "string") return t;
    const refresh = this.refreshToken;
    const tok = await t({ refresh });
    if (refresh) this.refreshToken = false;
    return tok;
  }

  /**
   * abandon gives up on a connection from the client's side: closes the
   * socket without waiting for the close handshake (a dead connection never
   * completes one) and goes on as if it had closed with info. delayMs, when
   * set, replaces the backoff before the next attempt.
   */
  private abandon(conn: Conn, info: DisconnectInfo, delayMs?: number): void {
    const ws = conn.ws as WebSocketLike & { terminate?: () => void };
    ws.onclose = null;
    ws.onmessage = null;
    try {
      if (info.code === CloseCode.Normal || !ws.terminate) ws.close(CloseCode.Normal, info.reason.slice(0, 100));
      else ws.terminate();
    } catch {
      // Already closing.
    }
    this.onClose(conn, info, delayMs);
  }

  private onClose(conn: Conn, info: DisconnectInfo, delayMs?: number): void {
    if (conn.gone) return;
    conn.gone = true;
    clearTimer(conn.readyTimer);
    clearTimer(conn.pingTimer);
    if (this.conn !== conn) return;
    this.conn = undefined;
    for (const e of this.queue) e.sent = false;
    this.presenceRequests.clear();
    const status = conn.status;
    const full: DisconnectInfo = status === undefined ? info : { ...info, status };
    this.events.emit("disconnected", full);
    if (this.stateValue === "closed") return;
    if (delayMs !== undefined) {
      this.scheduleReconnect(delayMs);
      return;
    }
    this.afterClose(full, conn.ready);
  }

  /** afterClose decides, from how a connection ended, whether and when to try again. */
  private afterClose(info: DisconnectInfo, wasReady: boolean): void {
    const canRefresh = typeof this.opts.token === "function";
    const refused = (why: string): void => {
      this.stop(info, new BachataClientError("refused", why, { ...optional("status", info.status), closeCode: info.code }));
    };
    if (info.status !== undefined) {
      switch (info.status) {
        case 401:
          if (canRefresh && !this.refusedAfterRefresh) {
            this.refusedAfterRefresh = true;
            this.refreshToken = true;
            this.scheduleReconnect(this.nextBackoff());
          } else {
            refused("the gateway refused the token (HTTP 401)");
          }
          return;
        case 400:
          refused("the gateway refused the connection (HTTP 400: is the device name valid?)");
          return;
        case 403:
          refused("the gateway refused this origin (HTTP 403)");
          return;
        case 429:
          this.scheduleReconnect(Math.max(this.opts.policyPauseMs, this.nextBackoff()));
          return;
        default:
          this.rotateUrl();
          this.scheduleReconnect(this.nextBackoff());
          return;
      }
    }
    switch (info.code) {
      case CloseCode.Normal:
        if (info.reason === "replaced") {
          this.stop(info);
          return;
        }
        break;
      case CloseCode.TokenExpired:
        if (!canRefresh) {
          refused("the token expired (close 4401) and `token` is a fixed string");
          return;
        }
        this.refreshToken = true;
        this.scheduleReconnect(this.jitterOnly());
        return;
      case CloseCode.PolicyViolation:
        this.scheduleReconnect(Math.max(this.opts.policyPauseMs, this.nextBackoff()));
        return;
      case CloseCode.ServiceRestart:
        this.rotateUrl();
        this.scheduleReconnect(this.jitterOnly());
        return;
    }
    if (!wasReady) this.rotateUrl();
    this.scheduleReconnect(this.nextBackoff());
  }

  private rotateUrl(): void {
    this.urlIndex = (this.urlIndex + 1) % this.opts.urls.length;
  }

  private nextBackoff(): number {
    return backoffDelay(this.opts.backoff, this.attempt++);
  }

  /** jitterOnly is a short random delay: reconnect at once, but not all clients in the same instant. */
  private jitterOnly(): number {
    return Math.round(Math.random() * this.opts.backoff.initialMs);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stateValue === "closed") return;
    clearTimer(this.reconnectTimer);
    this.setState("reconnecting");
    this.events.emit("reconnecting", { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimer(() => {
      this.reconnectTimer = undefined;
      void this.openSocket();
    }, delayMs);
  }

  /** stop ends the client for good: no more attempts. The queue is left to close(). */
  private stop(info: DisconnectInfo, error?: BachataClientError): void {
    if (this.stateValue === "closed") return;
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = undefined;
    clearTimer(this.holdTimer);
    this.holdTimer = undefined;
    const conn = this.conn;
    this.setState("closed");
    if (conn) this.abandon(conn, { code: CloseCode.Normal, reason: info.reason });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    const err = error ?? new BachataClientError("closed", `stopped: ${info.code} ${info.reason}`, { closeCode: info.code });
    for (const w of waiters) w.reject(err);
    if (error && error.reason !== "closed") this.events.emit("error", error);
    this.events.emit("closed", error ? { ...info, error } : info);
  }

  // ---- frames in -----------------------------------------------------------

  private onFrame(conn: Conn, raw: unknown): void {
    if (conn !== this.conn) return;
    conn.lastRx = Date.now();
    conn.pingSentAt = undefined;
    if (typeof raw !== "string") {
      this.protocolError("a binary frame from the server");
      return;
    }
    let f: unknown;
    try {
      f = JSON.parse(raw);
    } catch (err) {
      this.protocolError("a frame that is not JSON", err);
      return;
    }
    if (typeof f !== "object" || f === null) {
      this.protocolError("a frame that is not an object");
      return;
    }
    const frame = f as Record<string, unknown>;
    if (typeof frame["type"] === "number") this.onTransport(conn, frame["type"], frame["data"]);
    else if (typeof frame["type"] === "string") this.onData(conn, frame as unknown as DataMessage);
    else this.protocolError("a frame without a type");
  }

  private onTransport(conn: Conn, type: number, data: unknown): void {
    const id = typeof data === "string" ? data : "";
    switch (type) {
      case Transport.Ready:
        this.onReady(conn, id);
        return;
      case Transport.Received:
        this.answered(id, { id });
        this.events.emit("received", { id });
        return;
      case Transport.Delivered:
        this.events.emit("delivered", { id });
        return;
      case Transport.Ping:
        void this.writeTransport(conn, Transport.Pong, undefined);
        return;
      case Transport.Pong:
        return; // liveness was recorded
      default:
        this.protocolError(`transport type ${type} from the server`);
    }
  }

  private onReady(conn: Conn, key: string): void {
    if (conn.ready || key === "") return;
    const resumed = this.sessionKeyValue !== undefined && this.sessionKeyValue === key;
    conn.ready = true;
    clearTimer(conn.readyTimer);
    this.sessionKeyValue = key;
    this.resumedValue = resumed;
    this.attempt = 0;
    this.refusedAfterRefresh = false;
    this.persist("session", key);
    this.setState("open");
    this.startPing(conn);
    if (this.watched.size > 0) void this.requestPresence("presence.subscribe", [...this.watched]);
    this.schedulePump();
    this.events.emit("ready", { sessionKey: key, resumed });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private onData(conn: Conn, m: DataMessage): void {
    const errReply = parseErrorReply(m);
    if (errReply) {
      this.onErrorReply(errReply);
      return;
    }
    if (m.type === "presence") {
      this.onPresence(m.data);
      return;
    }
    if (typeof m.id !== "string" || m.id === "") {
      this.protocolError(`a ${m.type} message without an id`);
      return;
    }
    const msg: IncomingMessage = { id: m.id, type: m.type };
    if (m.time !== undefined) msg.time = m.time;
    if (m.from !== undefined) msg.from = m.from;
    if (m.dest !== undefined) msg.dest = m.dest;
    if ("data" in m) msg.data = m.data;
    // A reply to a request of ours (app, handshake): same id and type, and
    // from the server itself (no from).
    if (msg.from === undefined && this.queue.some((e) => e.id === msg.id && e.type === msg.type && e.sent)) {
      this.answered(msg.id, { id: msg.id, reply: msg.data }, msg.type);
      return;
    }
    if (this.opts.ephemeralTypes.has(msg.type)) {
      if (msg.type === "typing") {
        const d = (typeof msg.data === "object" && msg.data !== null ? msg.data : {}) as Record<string, unknown>;
        this.events.emit("typing", { from: msg.from ?? "", dest: msg.dest ?? "", typing: d["typing"] === true, message: msg });
      } else {
        this.events.emit("ephemeral", msg);
      }
      return;
    }
    this.inbox = this.inbox.then(() => this.handle(conn, msg)).catch((err: unknown) => this.internalError("handling a message", err));
  }

  /** handle hands one message to the application and acks it; one at a time, in order. */
  private async handle(conn: Conn, msg: IncomingMessage): Promise<void> {
    if (conn !== this.conn || conn.gone) return; // the server delivers it again on the next connection
    const key = `${msg.from ?? ""}\u0000${msg.id}`;
    if (this.seen.has(key)) {
      await this.ack(conn, msg.id);
      return;
    }
    const handlers = this.events.listenersOf("message");
    if (handlers.length === 0) {
      this.events.emit("error", new BachataClientError("handler", `no message handler: ${msg.id} not acked`));
      return;
    }
    try {
      for (const h of handlers) await h(msg);
    } catch (err) {
      this.events.emit("error", new BachataClientError("handler", `message handler failed on ${msg.id}; not acked`, { cause: err }));
      return;
    }
    this.seen.add(key);
    await this.ack(conn, msg.id);
  }

  private async ack(conn: Conn, id: string): Promise<void> {
    // On another connection the server delivers the message again, and
    // then the dedupe acks it.
    if (conn === this.conn && !conn.gone) await this.writeTransport(conn, Transport.Ack, id);
  }

  private onErrorReply(r: ErrorReply): void {
    if (r.id !== undefined) {
      const e = this.queue.find((q) => q.id === r.id && q.type === r.type);
      if (e) {
        if (this.opts.retryCodes.has(r.code)) this.retryLater(e);
        else this.answered(e.id, undefined, e.type, new BachataError(r));
        return;
      }
      const pr = this.presenceRequests.get(r.id);
      if (pr && r.type === "presence.subscribe") {
        this.presenceRequests.delete(r.id);
        this.presenceRefused(pr, r);
        return;
      }
    }
    this.events.emit("error", new BachataError(r));
  }

  private onPresence(data: unknown): void {
    if (typeof data !== "object" || data === null) {
      this.protocolError("a presence event without data");
      return;
    }
    const ev = data as PresenceEvent;
    this.events.emit("presence", ev);
    const left: typeof this.presenceWaiters = [];
    for (const w of this.presenceWaiters) {
      for (const u of w.users) if (sameUser(u, ev.user)) w.users.delete(u);
      if (w.users.size === 0) w.resolve();
      else left.push(w);
    }
    this.presenceWaiters = left;
  }

  private presenceRefused(req: { users: string[]; retries: number }, r: ErrorReply): void {
    if (this.opts.retryCodes.has(r.code)) {
      const delay = backoffDelay(this.opts.backoff, req.retries);
      setTimer(() => {
        const still = req.users.filter((u) => this.watched.has(u));
        if (still.length > 0 && this.conn?.ready) void this.requestPresence("presence.subscribe", still, req.retries + 1);
      }, delay);
      return;
    }
    const err = new BachataError(r);
    for (const u of req.users) this.watched.delete(u);
    let reported = false;
    this.presenceWaiters = this.presenceWaiters.filter((w) => {
      if (!req.users.some((u) => w.users.has(u))) return true;
      w.reject(err);
      reported = true;
      return false;
    });
    if (!reported) this.events.emit("error", err);
  }

  // ---- frames out ----------------------------------------------------------

  private answered(id: string, result: SendResult | undefined, type?: string, err?: Error): void {
    const i = this.queue.findIndex((e) => e.id === id && (type === undefined || e.type === type));
    if (i < 0) return;
    const [e] = this.queue.splice(i, 1);
    this.persistQueue();
    this.schedulePump();
    if (!e) return;
    if (err) {
      if (e.reject) e.reject(err);
      else this.events.emit("error", err as BachataError);
    } else if (result) {
      e.resolve?.(result);
    }
  }

  private retryLater(e: Outgoing): void {
    e.sent = false;
    const delay = backoffDelay(this.opts.backoff, e.retries++);
    clearTimer(this.holdTimer);
    this.holdTimer = setTimer(() => {
      this.holdTimer = undefined;
      this.schedulePump();
    }, delay);
  }

  private schedulePump(): void {
    this.pump().catch((err: unknown) => this.internalError("sending", err));
  }

  /**
   * pump writes queued messages, oldest first, while fewer than
   * maxInFlight await their answer on the current connection. One pump runs
   * at a time (signing is asynchronous; writes must stay in order).
   */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const conn = this.conn;
        if (!conn?.ready || conn.gone || this.holdTimer !== undefined) return;
        let inFlight = this.queue.filter((e) => e.sent).length;
        for (const e of [...this.queue]) {
          if (inFlight >= this.opts.maxInFlight) break;
          if (e.sent) continue;
          const frame = await this.encodeData(e);
          if (conn !== this.conn || conn.gone || this.holdTimer !== undefined) return;
          if (!this.queue.includes(e) || e.sent) continue;
          this.write(conn, frame);
          e.sent = true;
          inFlight++;
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private async sendEphemeral(m: { id: string; type: string; dest: string | undefined; data: unknown }): Promise<void> {
    const tooLarge = this.checkSize(m);
    if (tooLarge) throw tooLarge;
    const conn = this.conn;
    if (!conn?.ready || conn.gone) throw new BachataClientError("not_connected", `not connected: ${m.type} not sent`);
    const frame = await this.encodeData(m);
    if (conn !== this.conn || conn.gone) throw new BachataClientError("not_connected", `connection lost: ${m.type} not sent`);
    this.write(conn, frame);
  }

  private async requestPresence(type: "presence.subscribe" | "presence.unsubscribe", users: string[], retries = 0): Promise<void> {
    const conn = this.conn;
    for (let i = 0; i < users.length; i += MAX_USERS_PER_REQUEST) {
      const chunk = users.slice(i, i + MAX_USERS_PER_REQUEST);
      const id = newId();
      if (type === "presence.subscribe") this.presenceRequests.set(id, { users: chunk, retries });
      const frame = await this.encodeData({ id, type, dest: undefined, data: { users: chunk } });
      if (!conn || conn !== this.conn || conn.gone) return; // the next ready subscribes again
      this.write(conn, frame);
    }
  }

  private async encodeData(m: { id: string; type: string; dest: string | undefined; data: unknown }): Promise<string> {
    const f: DataMessage = { id: m.id, type: m.type };
    if (m.dest !== undefined) f.dest = m.dest;
    if (m.data !== undefined) f.data = m.data;
    if (this.opts.sign && this.sessionKeyValue) f.sign = await sign(this.sessionKeyValue, dataCanonical(m));
    return JSON.stringify(f);
  }

  private async writeTransport(conn: Conn, type: number, data: string | undefined): Promise<void> {
    const f: { type: number; data?: string; sign?: string } = { type };
    if (data !== undefined) f.data = data;
    if (this.opts.sign && this.sessionKeyValue && data !== undefined) {
      f.sign = await sign(this.sessionKeyValue, transportCanonical(type, data));
    }
    if (conn === this.conn && !conn.gone) this.write(conn, JSON.stringify(f));
  }

  private write(conn: Conn, frame: string): void {
    if (conn.ws.readyState !== OPEN) return; // a close event is on its way
    try {
      conn.ws.send(frame);
    } catch (err) {
      this.abandon(conn, { code: CloseCode.Abnormal, reason: `send failed: ${String(err)}` });
    }
  }

  private checkSize(m: { id: string; type: string; dest: string | undefined; data: unknown }): BachataClientError | undefined {
    const f: DataMessage = { id: m.id, type: m.type };
    if (m.dest !== undefined) f.dest = m.dest;
    if (m.data !== undefined) f.data = m.data;
    // A signature adds `,"sign":"<64 hex>"`: 74 bytes.
    const size = utf8(JSON.stringify(f)).length + (this.opts.sign ? 74 : 0);
    if (size <= this.opts.maxFrameBytes) return undefined;
    return new BachataClientError("frame_too_large", `message ${m.id} is ${size} bytes, over the ${this.opts.maxFrameBytes}-byte frame limit`);
  }

  // ---- liveness ------------------------------------------------------------

  private startPing(conn: Conn): void {
    const every = this.opts.pingIntervalMs;
    if (every <= 0) return;
    const tick = Math.max(100, Math.min(every, this.opts.pongTimeoutMs) / 4);
    const check = (): void => {
      if (conn.gone) return;
      const now = Date.now();
      if (conn.pingSentAt !== undefined && now - conn.pingSentAt >= this.opts.pongTimeoutMs) {
        this.abandon(conn, { code: CloseCode.Abnormal, reason: "no pong" });
        return;
      }
      if (conn.pingSentAt === undefined && now - conn.lastRx >= every) {
        conn.pingSentAt = now;
        void this.writeTransport(conn, Transport.Ping, undefined);
      }
      conn.pingTimer = setTimer(check, tick);
    };
    conn.pingTimer = setTimer(check, tick);
  }

  // ---- storage -------------------------------------------------------------

  private load(): Promise<void> {
    const storage = this.opts.storage;
    if (!storage) return Promise.resolve();
    this.loaded ??= (async () => {
      try {
        const [session, queue] = await Promise.all([
          storage.getItem(`${this.opts.storageKey}:session`),
          storage.getItem(`${this.opts.storageKey}:queue`),
        ]);
        if (session && this.sessionKeyValue === undefined) this.sessionKeyValue = session;
        if (queue) {
          const stored = JSON.parse(queue) as StoredOutgoing[];
          const restored: Outgoing[] = stored
            .filter((s) => typeof s.id === "string" && typeof s.type === "string" && !this.queue.some((e) => e.id === s.id))
            .map((s) => ({ id: s.id, type: s.type, dest: s.dest, data: s.data, sent: false, retries: 0, resolve: undefined, reject: undefined }));
          this.queue = [...restored, ...this.queue];
        }
      } catch (err) {
        this.events.emit("error", new BachataClientError("storage", "cannot load the session and queue", { cause: err }));
      }
    })();
    return this.loaded;
  }

  private persistQueue(): void {
    if (!this.opts.storage) return;
    this.persist("queue", this.queue.length === 0 ? undefined : JSON.stringify(this.queue.map(storedForm)));
  }

  private persist(what: "session" | "queue", value: string | undefined): void {
    const storage = this.opts.storage;
    if (!storage) return;
    const key = `${this.opts.storageKey}:${what}`;
    // Writes go one after another, so the last one wins.
    this.storageChain = this.storageChain
      .then(async () => {
        await this.load();
        if (value === undefined) await storage.removeItem(key);
        else await storage.setItem(key, value);
      })
      .catch((err: unknown) => {
        this.events.emit("error", new BachataClientError("storage", `cannot save the ${what}`, { cause: err }));
      });
  }

  // ---- errors --------------------------------------------------------------

  private protocolError(what: string, cause?: unknown): void {
    this.events.emit("error", new BachataClientError("protocol", `unexpected ${what}`, cause === undefined ? {} : { cause }));
  }

  private internalError(what: string, err: unknown): void {
    this.events.emit("error", new BachataClientError("protocol", `failed ${what}`, { cause: err }));
  }

  private listenerFailed(err: unknown): void {
    // An error listener that throws is not told about itself.
    const e = new BachataClientError("handler", "an event listener threw", { cause: err });
    for (const fn of this.events.listenersOf("error")) {
      try {
        fn(e);
      } catch {
        // Dropped on purpose: see above.
      }
    }
  }
}

function storedForm(e: { id: string; type: string; dest: string | undefined; data: unknown }): StoredOutgoing {
  const s: StoredOutgoing = { id: e.id, type: e.type };
  if (e.dest !== undefined) s.dest = e.dest;
  if (e.data !== undefined) s.data = e.data;
  return s;
}

/** sameUser says whether a requested user (entity ID or bare name) is the event's user. */
function sameUser(requested: string, user: string): boolean {
  return requested === user || (!requested.startsWith("@") && user.startsWith(`@${requested}@`));
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function optional<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}
