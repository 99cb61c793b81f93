// FakeSocket stands in for a WebSocket in unit tests: the test plays the
// gateway, frame by frame. The end-to-end behaviour is proven against the
// real suite in suite.test.ts; these cover the decisions that the real
// suite makes slow or hard to provoke (expiry, refusals, pauses, timeouts).

import type { WebSocketLike } from "../src/index.js";

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];

  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Frames the client wrote, parsed. */
  readonly sent: Record<string, unknown>[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  private readonly listeners = new Map<string, ((...a: unknown[]) => void)[]>();

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
    readonly options?: { headers?: Record<string, string> },
  ) {
    FakeSocket.all.push(this);
  }

  static last(): FakeSocket {
    const s = FakeSocket.all.at(-1);
    if (!s) throw new Error("no socket yet");
    return s;
  }

  static reset(): void {
    FakeSocket.all = [];
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    const c: { code?: number; reason?: string } = {};
    if (code !== undefined) c.code = code;
    if (reason !== undefined) c.reason = reason;
    this.closedWith = c;
    this.readyState = 3;
  }

  /** on mimics the ws package's EventEmitter, for "unexpected-response". */
  on(ev: string, fn: (...a: unknown[]) => void): void {
    this.listeners.set(ev, [...(this.listeners.get(ev) ?? []), fn]);
  }

  terminate(): void {
    this.readyState = 3;
    this.closedWith = { code: 1006 };
    queueMicrotask(() => this.onclose?.({ code: 1006, reason: "" }));
  }

  // ---- the gateway's side ----

  open(sessionKey = "key-1"): void {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ type: 1000, data: sessionKey });
  }

  frame(f: unknown): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  refuse(status: number): void {
    for (const fn of this.listeners.get("unexpected-response") ?? []) fn({}, { statusCode: status });
  }

  /** dataFrames are the data messages written, without pings, pongs and acks. */
  dataFrames(): Record<string, unknown>[] {
    return this.sent.filter((f) => typeof f["type"] === "string");
  }

  acks(): unknown[] {
    return this.sent.filter((f) => f["type"] === 200).map((f) => f["data"]);
  }
}

/** until polls cond every 5 ms until it holds, or fails after ms. */
export async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
