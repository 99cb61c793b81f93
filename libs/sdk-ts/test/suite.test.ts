// The SDK against the real suite: the four services built from this
// repository, a real redis-server and NATS (see harness.ts). Each test uses
// users of its own, so they do not see each other's traffic.

import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { WebSocket } from "ws";

import {
  BachataClient,
  type BachataClientOptions,
  BachataClientError,
  BachataError,
  ErrorCode,
  type IncomingMessage,
  type PresenceEvent,
  type StorageLike,
} from "../src/index.js";
import { type Suite, sleep, startSuite } from "./harness.js";

let suite: Suite;
const clients: BachataClient[] = [];
let runId = 0;

/** user returns a username no other test uses. */
function user(name: string): string {
  return `${name}-${process.pid}-${++runId}`;
}

function client(name: string, device = "phone", over: Partial<BachataClientOptions> = {}): BachataClient {
  const c = new BachataClient({
    url: suite.url,
    token: suite.token(name),
    device,
    WebSocket,
    backoff: { initialMs: 50, maxMs: 500, factor: 2, jitter: 0.2 },
    ...over,
  });
  clients.push(c);
  return c;
}

/** inbox records what a client's message handler is given. */
function inbox(c: BachataClient): IncomingMessage[] {
  const got: IncomingMessage[] = [];
  c.on("message", (m) => void got.push(m));
  return got;
}

/** events records every payload of one event. */
function events<T>(c: BachataClient, name: "received" | "delivered" | "presence" | "typing" | "ready"): T[] {
  const got: T[] = [];
  c.on(name, ((v: T) => void got.push(v)) as never);
  return got;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n--- suite logs ---\n${suite.logs().slice(-3000)}`);
    await sleep(20);
  }
}

const at = (u: string): string => `@${u}@localhost`;

describe("against the real suite", { timeout: 110_000 }, () => {
  before(async () => {
    suite = await startSuite();
  }, { timeout: 100_000 });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  after(async () => {
    await suite?.stop();
  }, { timeout: 20_000 });

  it("direct message: 100, delivery, automatic 200, then 300", { timeout: 20_000 }, async () => {
    const [a, b] = [user("alice"), user("bob")];
    const alice = client(a);
    const bob = client(b);
    const got = inbox(bob);
    const delivered = events<{ id: string }>(alice, "delivered");
    const received = events<{ id: string }>(alice, "received");
    await Promise.all([alice.connect(), bob.connect()]);

    const res = await alice.send("direct", b, { text: "lunch?" });
    assert.deepEqual(received, [{ id: res.id }]);
    await until(() => got.length === 1, "bob's message");
    assert.equal(got[0]?.id, res.id);
    assert.equal(got[0]?.from, at(a));
    assert.equal(got[0]?.dest, b);
    assert.deepEqual(got[0]?.data, { text: "lunch?" });
    assert.ok((got[0]?.time ?? 0) > 0);
    // The 300 comes only after bob's device acked: the SDK did.
    await until(() => delivered.length === 1, "alice's 300");
    assert.deepEqual(delivered, [{ id: res.id }]);
    await sleep(200);
    assert.equal(got.length, 1, "handed over once");
  });

  it("an offline recipient gets the message when it connects", { timeout: 20_000 }, async () => {
    const [a, c] = [user("alice"), user("carol")];
    const alice = client(a);
    const delivered = events<{ id: string }>(alice, "delivered");
    await alice.connect();
    const { id } = await alice.send("direct", at(c), { text: "while you were out" });

    const carol = client(c);
    const got = inbox(carol);
    await carol.connect();
    await until(() => got.length === 1, "carol's message");
    assert.equal(got[0]?.id, id);
    assert.equal(got[0]?.from, at(a));
    await until(() => delivered.some((d) => d.id === id), "alice's 300");
  });

  it("the outgoing queue resends across a gateway crash: nothing lost, nothing handed twice, in order", { timeout: 90_000 }, async () => {
    const [a, d] = [user("alice"), user("dave")];
    const alice = client(a);
    const dave = client(d);
    const got = inbox(dave);
    const readies = events<{ sessionKey: string; resumed: boolean }>(alice, "ready");
    const disconnects: number[] = [];
    alice.on("disconnected", (i) => void disconnects.push(i.code));
    await Promise.all([alice.connect(), dave.connect()]);
    const key = alice.sessionKey;

    const n = 30;
    const ids = Array.from({ length: n }, (_, i) => `q-${i}`);
    let accepted = 0;
    let crash: Promise<void> | undefined;
    alice.on("received", () => {
      if (++accepted === 10) crash = suite.crashGateway().then(() => suite.start());
    });
    const sends = ids.map((id, i) => alice.send("direct", d, { i }, { id }));
    await until(() => crash !== undefined, "ten accepted before the crash", 20_000);
    await crash;
    const results = await Promise.all(sends);
    assert.deepEqual(results.map((r) => r.id), ids);
    assert.ok(disconnects.includes(1006), `alice saw the connection drop: ${disconnects}`);

    await until(() => got.length >= n, `dave's ${n} messages (has ${got.length})`, 30_000);
    await sleep(500); // a duplicate would come now
    assert.deepEqual(got.map((m) => m.id), ids, "each once, in order");

    // The session survived the crash: its key lives in the suite, not in the gateway.
    assert.equal(readies.length, 2);
    assert.deepEqual(readies[1], { sessionKey: key, resumed: true });
    assert.equal(alice.resumed, true);
  });

  it("a message handled but not acked before the connection dropped is acked again, not handed twice", { timeout: 20_000 }, async () => {
    const [a, b] = [user("alice"), user("bob")];
    const alice = client(a);
    const bob = client(b);
    const delivered = events<{ id: string }>(alice, "delivered");
    let calls = 0;
    bob.on("message", async () => {
      calls++;
      // The connection goes while the application is still at it, so the
      // ack cannot be sent on it; the message comes again on the next one.
      bob.reconnect();
      await sleep(50);
    });
    const readies = events(bob, "ready");
    await Promise.all([alice.connect(), bob.connect()]);
    const { id } = await alice.send("direct", b, "once");
    await until(() => delivered.some((x) => x.id === id), "the 300 after the redelivery's ack");
    assert.equal(calls, 1);
    assert.ok(readies.length >= 2);
  });

  it("a handler that throws leaves the message unacked, and it comes again", { timeout: 20_000 }, async () => {
    const [a, b] = [user("alice"), user("bob")];
    const alice = client(a);
    const bob = client(b);
    const delivered = events<{ id: string }>(alice, "delivered");
    const seen: string[] = [];
    let fail = true;
    const errors: unknown[] = [];
    bob.on("error", (e) => void errors.push(e));
    bob.on("message", (m) => {
      seen.push(m.id);
      if (fail) throw new Error("the database is down");
    });
    await Promise.all([alice.connect(), bob.connect()]);
    const { id } = await alice.send("direct", b, "try again");
    await until(() => seen.length === 1, "the first delivery");
    await sleep(300);
    assert.equal(delivered.length, 0, "no 300 without an ack");
    assert.ok(errors[0] instanceof BachataClientError && errors[0].reason === "handler");
    fail = false;
    bob.reconnect();
    await until(() => delivered.some((x) => x.id === id), "the 300 after the second delivery");
    assert.deepEqual(seen, [id, id]);
  });

  it("resume keeps the session key across a reconnect and across a restart of the application", { timeout: 20_000 }, async () => {
    const u = user("erin");
    const mem = new Map<string, string>();
    const storage: StorageLike = {
      getItem: (k) => mem.get(k) ?? null,
      setItem: (k, v) => void mem.set(k, v),
      removeItem: (k) => void mem.delete(k),
    };
    const first = client(u, "laptop", { storage, storageKey: `t:${u}` });
    await first.connect();
    const key = first.sessionKey;
    assert.ok(key && key.length === 43);
    assert.equal(first.resumed, false);
    const again = new Promise((r) => first.once("ready", r));
    first.reconnect();
    assert.deepEqual(await again, { sessionKey: key, resumed: true });

    // A new instance with the same storage (a page reload) resumes too.
    const second = client(u, "laptop", { storage, storageKey: `t:${u}` });
    await second.connect();
    assert.equal(second.sessionKey, key);
    assert.equal(second.resumed, true);
    // The first was replaced by the second: it stops for good.
    await until(() => first.state === "closed", "the first client closed as replaced");
  });

  it("presence events after subscribing, and again after a reconnect", { timeout: 30_000 }, async () => {
    const [w, f] = [user("wendy"), user("frank")];
    const wendy = client(w);
    const seen = events<PresenceEvent>(wendy, "presence");
    await wendy.connect();
    await wendy.subscribePresence([f]);
    assert.equal(seen[0]?.user, at(f));
    assert.equal(seen[0]?.status, "offline");

    const frank = client(f);
    await frank.connect();
    await until(() => seen.some((e) => e.status === "online"), "frank online");

    const before = seen.length;
    wendy.reconnect();
    await until(() => seen.length > before, "the state again after the reconnect");
    assert.deepEqual({ user: seen.at(-1)?.user, status: seen.at(-1)?.status }, { user: at(f), status: "online" });

    frank.close();
    await until(() => seen.at(-1)?.status === "offline", "frank offline");
  });

  it("typing indicators reach the other side, and are not acked", { timeout: 20_000 }, async () => {
    const [a, b] = [user("alice"), user("bob")];
    const alice = client(a);
    const bob = client(b);
    const typing = events<{ from: string; typing: boolean }>(bob, "typing");
    const got = inbox(bob);
    await Promise.all([alice.connect(), bob.connect()]);
    assert.equal(await alice.typing(b, true), true);
    await until(() => typing.length === 1, "typing");
    assert.equal(typing[0]?.from, at(a));
    assert.equal(typing[0]?.typing, true);
    await alice.typing(b, false);
    await until(() => typing.length === 2, "stopped typing");
    assert.equal(typing[1]?.typing, false);
    assert.equal(got.length, 0);
  });

  it("an :error reply rejects the send", { timeout: 20_000 }, async () => {
    const alice = client(user("alice"));
    await alice.connect();
    await assert.rejects(alice.send("dirct", "bob", { text: "hi" }), (e: unknown) => {
      assert.ok(e instanceof BachataError);
      assert.equal(e.code, ErrorCode.UnknownType);
      assert.equal(e.type, "dirct");
      return true;
    });
    await assert.rejects(alice.send("direct", "Bob", { text: "hi" }), (e: unknown) => e instanceof BachataError && e.code === ErrorCode.InvalidDest);
    // The queue goes on after a rejection.
    assert.ok((await alice.send("direct", "bob", { text: "fine" })).id);
  });

  it("a refused token fails connect(); a token function gets one more chance", { timeout: 20_000 }, async () => {
    const bad = client("mallory", "phone", { token: "not-a-jwt" });
    await assert.rejects(bad.connect(), (e: unknown) => e instanceof BachataClientError && e.reason === "refused" && e.status === 401);
    assert.equal(bad.state, "closed");

    const u = user("grace");
    const asked: boolean[] = [];
    const good = client(u, "phone", {
      token: ({ refresh }) => {
        asked.push(refresh);
        return refresh ? suite.token(u) : "expired-or-garbage";
      },
    });
    await good.connect();
    assert.deepEqual(asked, [false, true]);
  });
});
