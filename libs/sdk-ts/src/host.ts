// The few things the SDK needs from its host (a browser or Node ≥ 20),
// typed here rather than through the DOM or Node type libraries, so that the
// published declarations compile in either world.

/**
 * WebSocketLike is the part of the WHATWG WebSocket the client uses. The
 * browser's global WebSocket and the `ws` package's WebSocket both fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/**
 * Handler is an event handler property. Declared through a method so that
 * its parameter is checked bivariantly: the DOM's and the ws package's
 * handlers take richer event types than the client reads.
 */
export type Handler<E> = { bivarianceHack(ev: E): void }["bivarianceHack"];

/**
 * WebSocketConstructor builds a socket. The third argument is passed only
 * when the token goes in a header (`tokenIn: "header"`), which the `ws`
 * package understands and browsers cannot do.
 */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

/** The readyState of an open socket (WHATWG). */
export const OPEN = 1;

type TimerHandle = unknown;

interface Host {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
  crypto?: {
    randomUUID?: () => string;
    getRandomValues<T extends Uint8Array>(a: T): T;
    subtle?: {
      importKey(f: "raw", key: Uint8Array, alg: { name: string; hash: string }, ext: boolean, use: string[]): Promise<unknown>;
      sign(alg: string, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
    };
  };
  WebSocket?: WebSocketConstructor;
  TextEncoder: new () => { encode(s: string): Uint8Array };
}

const host = globalThis as unknown as Host;

/** setTimer runs fn after ms; the handle goes to clearTimer. */
export function setTimer(fn: () => void, ms: number): TimerHandle {
  return host.setTimeout(fn, Math.max(0, ms));
}

/** clearTimer cancels a timer from setTimer; undefined is ignored. */
export function clearTimer(h: TimerHandle | undefined): void {
  if (h !== undefined) host.clearTimeout(h);
}

/** globalWebSocket is the host's WebSocket, if it has one (browsers, Node ≥ 22). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return host.WebSocket;
}

/** utf8 encodes a string. */
export function utf8(s: string): Uint8Array {
  return new host.TextEncoder().encode(s);
}

/** newId returns a random UUID v4, the recommended message id. */
export function newId(): string {
  const c = host.crypto;
  if (c?.randomUUID) return c.randomUUID();
  if (!c) throw new Error("bachata: no crypto.getRandomValues in this environment; pass message ids yourself");
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** hmacSha256Hex is the lowercase hex HMAC-SHA256 of msg under key (WebCrypto). */
export async function hmacSha256Hex(key: string, msg: string): Promise<string> {
  const subtle = host.crypto?.subtle;
  if (!subtle) throw new Error("bachata: signing needs WebCrypto (crypto.subtle)");
  const k = await subtle.importKey("raw", utf8(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await subtle.sign("HMAC", k, utf8(msg)));
  return Array.from(sig, (x) => x.toString(16).padStart(2, "0")).join("");
}
