// Unit tests: the pieces, and the client's decisions against a scripted
// gateway (FakeSocket).

import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";

import {
  BachataClient,
  type BachataClientOptions,
  BachataClientError,
  BachataError,
  type IncomingMessage,
  backoffDelay,
  dataCanonical,
  sign,
  transportCanonical,
} from "../src/index.js";
import { LRUSet } from "../src/lru.js";
import { FakeSocket, until } from "./fake.js";

const fast = { initialMs: 10, maxMs: 40, factor: 2, jitter: 0 };

function client(over: Partial<BachataClientOptions> = {}): BachataClient {
  return new BachataClient({
    url: "ws://gateway.test/ws",
    token: "tok",
    device: "phone",
    WebSocket: FakeSocket,
    backoff: fast,
    pingIntervalMs: 0,
    ...over,
  });
}

/** connected returns a client whose first socket is open and ready. */
async function connected(over: Partial<BachataClientOptions> = {}): Promise<{ c: BachataClient; s: FakeSocket }> {
  const c = client(over);
  const ready = c.connect();
  await until(() => FakeSocket.all.length > 0, "a socket");
  const s = FakeSocket.last();
  s.open();
  await ready;
  return { c, s };
}

describe("pieces", () => {
  it("backoff grows by factor up to max, less the jitter", () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(o, a, () => 0)), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffDelay(o, 2, () => 1), 200); // half of 400
    assert.equal(backoffDelay({ ...o, jitter: 0 }, 2, () => 1), 400);
  });

  it("LRUSet forgets the least recently used key", () => {
    const l = new LRUSet(2);
    l.add("a");
    l.add("b");
    assert.ok(l.has("a")); // a is now the most recent
    l.add("c");
    assert.ok(l.has("a"));
    assert.ok(!l.has("b"));
    assert.ok(l.has("c"));
    assert.equal(l.size, 2);
  });

  it("signs the worked example of docs/protocol.md", async () => {
    const key = "Zm9vYmFyLXNlc3Npb24ta2V5";
    const id = "9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41";
    const data = { text: "hi Bob, café 👋", n: [1, 2.5, { x: null }] };
    assert.equal(
      await sign(key, dataCanonical({ id, type: "direct", dest: "@bob@localhost", data })),
      "0c3e7e3be3893d8bfc45e94c7a060c388f458389e7bdb52b4426a325983543e9",
    );
    assert.equal(await sign(key, transportCanonical(200, id)), "ee282d46282156431ee74241dfd47db687def26b5e3fb0cbaa10b99e39689225");
  });
});

describe("client against a scripted gateway", { timeout: 10_000 }, () => {
  beforeEach(() => FakeSocket.reset());

  it("connects with device, token and then the session key", async () => {
    const { c, s } = await connected();
    assert.equal(s.url, "ws://gateway.test/ws?device=phone&token=tok");
    assert.equal(c.sessionKey, "key-1");
    assert.equal(c.resumed, false);
    assert.equal(c.state, "open");
    s.serverClose(1011, "session lost");
    await until(() => FakeSocket.all.length === 2, "a second socket");
    const s2 = FakeSocket.last();
    assert.equal(s2.url, "ws://gateway.test/ws?device=phone&session=key-1&token=tok");
    const ready = new Promise((r) => c.once("ready", r));
    s2.open("key-1");
    assert.deepEqual(await ready, { sessionKey: "key-1", resumed: true });
    assert.equal(c.resumed, true);
    c.close();
  });

  it("puts the token in a header when asked", async () => {
    const { c, s } = await connected({ tokenIn: "header" });
    assert.equal(s.url, "ws://gateway.test/ws?device=phone");
    assert.deepEqual(s.options, { headers: { Authorization: "Bearer tok" } });
    c.close();
  });

  it("sends one message at a time, in order, and resolves on 100", async () => {
    const { c, s } = await connected();
    const p1 = c.send("direct", "bob", { n: 1 }, { id: "m1" });
    const p2 = c.send("direct", "bob", { n: 2 }, { id: "m2" });
    await until(() => s.dataFrames().length === 1, "m1 written");
    assert.deepEqual(s.dataFrames()[0], { id: "m1", type: "direct", dest: "bob", data: { n: 1 } });
    s.frame({ type: 100, data: "m1" });
    assert.deepEqual(await p1, { id: "m1" });
    await until(() => s.dataFrames().length === 2, "m2 written after m1's 100");
    s.frame({ type: 100, data: "m2" });
    await p2;
    assert.equal(c.pending.length, 0);
    c.close();
  });

  it("keeps a window of maxInFlight", async () => {
    const { c, s } = await connected({ maxInFlight: 3 });
    const ps = [1, 2, 3, 4].map((n) => c.send("direct", "bob", n, { id: `m${n}` }));
    await until(() => s.dataFrames().length === 3, "three written");
    s.frame({ type: 100, data: "m1" });
    await until(() => s.dataFrames().length === 4, "the fourth");
    for (const id of ["m2", "m3", "m4"]) s.frame({ type: 100, data: id });
    await Promise.all(ps);
    c.close();
  });

  it("resends everything unanswered after a reconnect, same ids, in order", async () => {
    const { c, s } = await connected({ maxInFlight: 2 });
    const ps = ["a", "b", "c"].map((id) => c.send("direct", "bob", id, { id }));
    await until(() => s.dataFrames().length === 2, "a and b written");
    s.serverClose(1006);
    await until(() => FakeSocket.all.length === 2, "a new socket");
    const s2 = FakeSocket.last();
    s2.open("key-1");
    await until(() => s2.dataFrames().length === 2, "a and b again");
    assert.deepEqual(s2.dataFrames().map((f) => f["id"]), ["a", "b"]);
    s2.frame({ type: 100, data: "a" });
    s2.frame({ type: 100, data: "b" });
    await until(() => s2.dataFrames().length === 3, "c");
    s2.frame({ type: 100, data: "c" });
    assert.deepEqual(await Promise.all(ps), [{ id: "a" }, { id: "b" }, { id: "c" }]);
    c.close();
  });

  it("resends after a retryable error and rejects on another", async () => {
    const { c, s } = await connected();
    const p = c.send("direct", "bob", "x", { id: "r1" });
    await until(() => s.dataFrames().length === 1, "r1");
    s.frame({ id: "r1", type: "direct:error", data: { errCode: 4290, errText: "rate limited", errPayload: {} } });
    await until(() => s.dataFrames().length === 2, "r1 resent");
    assert.equal(s.dataFrames()[1]?.["id"], "r1");
    s.frame({ type: 100, data: "r1" });
    await p;

    const bad = c.send("dirct", "bob", "x", { id: "r2" });
    await until(() => s.dataFrames().length === 3, "r2");
    s.frame({ id: "r2", type: "dirct:error", data: { errCode: 4100, errText: "Incorrect type", errPayload: {} } });
    await assert.rejects(bad, (e: unknown) => e instanceof BachataError && e.code === 4100 && e.id === "r2");
    c.close();
  });

  it("resolves request/reply types with the reply", async () => {
    const { c, s } = await connected();
    const p = c.send("app", undefined, { app: "chat.x", mod: "m", act: "a" }, { id: "q1" });
    await until(() => s.dataFrames().length === 1, "q1");
    s.frame({ id: "q1", type: "app", time: 1, dest: "@alice@localhost", data: { ok: true } });
    assert.deepEqual(await p, { id: "q1", reply: { ok: true } });
    c.close();
  });

  it("refuses a frame over the limit locally", async () => {
    const { c } = await connected({ maxFrameBytes: 100 });
    await assert.rejects(c.send("direct", "bob", "x".repeat(200)), (e: unknown) => e instanceof BachataClientError && e.reason === "frame_too_large");
    c.close();
  });

  it("acks after the handler, not when it throws, and hands a redelivery over once", async () => {
    const { c, s } = await connected();
    const seen: string[] = [];
    let fail = true;
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    c.on("message", async (m: IncomingMessage) => {
      await new Promise((r) => setTimeout(r, 5));
      if (fail) {
        fail = false;
        throw new Error("app down");
      }
      seen.push(`${m.from} ${m.id}`);
    });
    const msg = { id: "d1", type: "direct", time: 1, from: "@bob@localhost", dest: "@alice@localhost", data: "hi" };
    s.frame(msg);
    await until(() => errors.length === 1, "the handler's error");
    assert.deepEqual(s.acks(), []);
    s.frame(msg); // redelivered
    await until(() => s.acks().length === 1, "the ack");
    s.frame(msg); // redelivered again (say the ack was lost)
    await until(() => s.acks().length === 2, "the second ack");
    s.frame({ ...msg, from: "@carol@localhost" }); // another sender, same id
    await until(() => s.acks().length === 3, "carol's ack");
    assert.deepEqual(seen, ["@bob@localhost d1", "@carol@localhost d1"]);
    assert.ok(errors[0] instanceof BachataClientError && errors[0].reason === "handler");
    c.close();
  });

  it("hands messages over one at a time, in order", async () => {
    const { c, s } = await connected();
    const log: string[] = [];
    c.on("message", async (m) => {
      log.push(`start ${m.id}`);
      await new Promise((r) => setTimeout(r, m.id === "1" ? 20 : 1));
      log.push(`end ${m.id}`);
    });
    s.frame({ id: "1", type: "direct", from: "@b@x", data: 1 });
    s.frame({ id: "2", type: "direct", from: "@b@x", data: 2 });
    await until(() => s.acks().length === 2, "two acks");
    assert.deepEqual(log, ["start 1", "end 1", "start 2", "end 2"]);
    assert.deepEqual(s.acks(), ["1", "2"]);
    c.close();
  });

  it("does not ack typing, and reports it", async () => {
    const { c, s } = await connected();
    const typing = new Promise((r) => c.once("typing", r));
    c.on("message", () => assert.fail("typing is not a message"));
    s.frame({ id: "t1", type: "typing", time: 1, from: "@bob@localhost", dest: "@alice@localhost", data: { typing: true } });
    const ev = (await typing) as { from: string; typing: boolean };
    assert.equal(ev.from, "@bob@localhost");
    assert.equal(ev.typing, true);
    assert.equal(await c.typing("bob", false), true);
    assert.deepEqual(s.dataFrames().at(-1)?.["data"], { typing: false });
    assert.equal(s.acks().length, 0);
    c.close();
    assert.equal(await c.typing("bob"), false);
  });

  it("answers pings, and pings itself when idle", async () => {
    const { c, s } = await connected({ pingIntervalMs: 30, pongTimeoutMs: 1000 });
    s.frame({ type: 1001 });
    await until(() => s.sent.some((f) => f["type"] === 1002), "a pong");
    await until(() => s.sent.some((f) => f["type"] === 1001), "a ping", 1000);
    c.close();
  });

  it("reconnects when no pong comes", async () => {
    const { c } = await connected({ pingIntervalMs: 20, pongTimeoutMs: 40 });
    await until(() => FakeSocket.all.length === 2, "a new socket after the missing pong", 2000);
    c.close();
  });

  it("stops on 1000 replaced", async () => {
    const { c, s } = await connected();
    const closed = new Promise((r) => c.once("closed", r));
    s.serverClose(1000, "replaced");
    assert.deepEqual(await closed, { code: 1000, reason: "replaced" });
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(c.state, "closed");
  });

  it("pauses longer after 1008", async () => {
    const { c, s } = await connected({ policyPauseMs: 500 });
    const next = new Promise<{ delayMs: number }>((r) => c.once("reconnecting", r));
    s.serverClose(1008, "kicked");
    assert.equal((await next).delayMs, 500);
    c.close();
  });

  it("on 4401 stops with a fixed token and fetches a new one from a function", async () => {
    const a = await connected();
    const closed = new Promise<{ error?: BachataClientError }>((r) => a.c.once("closed", r));
    a.s.serverClose(4401, "token expired");
    const info = await closed;
    assert.equal(info.error?.reason, "refused");
    assert.equal(info.error?.closeCode, 4401);

    FakeSocket.reset();
    const calls: boolean[] = [];
    const b = await connected({ token: ({ refresh }) => (calls.push(refresh), `t${calls.length}`) });
    b.s.serverClose(4401, "token expired");
    await until(() => FakeSocket.all.length === 2, "a new socket");
    assert.deepEqual(calls, [false, true]);
    assert.match(FakeSocket.last().url, /token=t2$/);
    b.c.close();
  });

  it("on HTTP 401 gives up with a fixed token, and after one refresh with a function", async () => {
    const a = client();
    const ready = a.connect();
    await until(() => FakeSocket.all.length === 1, "a socket");
    FakeSocket.last().refuse(401);
    await assert.rejects(ready, (e: unknown) => e instanceof BachataClientError && e.reason === "refused" && e.status === 401);

    FakeSocket.reset();
    const calls: boolean[] = [];
    const b = client({ token: ({ refresh }) => (calls.push(refresh), "t") });
    const ready2 = b.connect();
    await until(() => FakeSocket.all.length === 1, "a socket");
    FakeSocket.last().refuse(401);
    await until(() => FakeSocket.all.length === 2, "a retry with a fresh token");
    FakeSocket.last().refuse(401);
    await assert.rejects(ready2, (e: unknown) => e instanceof BachataClientError && e.status === 401);
    assert.deepEqual(calls, [false, true]);
  });

  it("rotates through several URLs", async () => {
    const c = client({ url: ["ws://a/ws", "ws://b/ws"] });
    void c.connect(); // rejected by close(), which is no unhandled rejection
    await until(() => FakeSocket.all.length === 1, "a socket");
    FakeSocket.last().serverClose(1006);
    await until(() => FakeSocket.all.length === 2, "the next URL");
    assert.match(FakeSocket.last().url, /^ws:\/\/b\/ws\?/);
    c.close();
  });

  it("close() rejects what is pending", async () => {
    const { c } = await connected();
    const p = c.send("direct", "bob", 1);
    c.close();
    await assert.rejects(p, (e: unknown) => e instanceof BachataClientError && e.reason === "closed");
    await assert.rejects(c.send("direct", "bob", 2), (e: unknown) => e instanceof BachataClientError && e.reason === "closed");
  });

  it("keeps the session key and the queue in storage across instances", async () => {
    const mem = new Map<string, string>();
    const storage = {
      getItem: async (k: string) => mem.get(k) ?? null,
      setItem: async (k: string, v: string) => void mem.set(k, v),
      removeItem: async (k: string) => void mem.delete(k),
    };
    const a = await connected({ storage });
    void a.c.send("direct", "bob", { n: 1 }, { id: "s1" }).catch(() => {});
    await until(() => mem.get("bachata:phone:queue")?.includes("s1") === true && mem.has("bachata:phone:session"), "saved");
    const saved = new Map(mem); // the page reloads: a new instance, same storage
    a.c.close();
    mem.clear();
    for (const [k, v] of saved) mem.set(k, v);

    FakeSocket.reset();
    const b = client({ storage });
    const received = new Promise((r) => b.once("received", r));
    const ready = b.connect();
    await until(() => FakeSocket.all.length === 1, "a socket");
    const s = FakeSocket.last();
    assert.match(s.url, /session=key-1/);
    s.open("key-1");
    await ready;
    assert.equal(b.resumed, true);
    await until(() => s.dataFrames().length === 1, "the restored message");
    assert.deepEqual(s.dataFrames()[0], { id: "s1", type: "direct", dest: "bob", data: { n: 1 } });
    s.frame({ type: 100, data: "s1" });
    assert.deepEqual(await received, { id: "s1" });
    await until(() => !mem.has("bachata:phone:queue"), "the queue emptied in storage");
    b.close();
  });

  it("signs data messages and acks with the session key", async () => {
    const { c, s } = await connected({ sign: true });
    c.send("direct", "bob", { t: 1 }, { id: "g1" }).catch(() => {}); // rejected by close()
    await until(() => s.dataFrames().length === 1, "g1");
    assert.equal(s.dataFrames()[0]?.["sign"], await sign("key-1", dataCanonical({ id: "g1", type: "direct", dest: "bob", data: { t: 1 } })));
    c.on("message", () => {});
    s.frame({ id: "in1", type: "direct", from: "@bob@x", data: 1 });
    await until(() => s.acks().length === 1, "the ack");
    const ack = s.sent.find((f) => f["type"] === 200);
    assert.equal(ack?.["sign"], await sign("key-1", transportCanonical(200, "in1")));
    c.close();
  });

  it("subscribes to presence again after a reconnect", async () => {
    const { c, s } = await connected();
    const sub = c.subscribePresence(["bob", "@carol@localhost"]);
    await until(() => s.dataFrames().length === 1, "the subscribe");
    assert.deepEqual(s.dataFrames()[0]?.["data"], { users: ["bob", "@carol@localhost"] });
    s.frame({ type: "presence", data: { user: "@bob@localhost", status: "online", lastSeen: 5 } });
    s.frame({ type: "presence", data: { user: "@carol@localhost", status: "offline" } });
    await sub;
    c.unsubscribePresence(["@carol@localhost"]);
    await until(() => s.dataFrames().length === 2, "the unsubscribe");
    assert.deepEqual(s.dataFrames()[1], { id: s.dataFrames()[1]?.["id"], type: "presence.unsubscribe", data: { users: ["@carol@localhost"] } });
    s.serverClose(1001, "idle timeout");
    await until(() => FakeSocket.all.length === 2, "a new socket");
    const s2 = FakeSocket.last();
    s2.open("key-1");
    await until(() => s2.dataFrames().length === 1, "the subscribe again");
    assert.deepEqual(s2.dataFrames()[0]?.["data"], { users: ["bob"] });

    const refused = c.subscribePresence(["x"]);
    await until(() => s2.dataFrames().length === 2, "the second subscribe");
    const id = s2.dataFrames()[1]?.["id"];
    s2.frame({ id, type: "presence.subscribe:error", data: { errCode: 4291, errText: "too many", errPayload: {} } });
    await assert.rejects(refused, (e: unknown) => e instanceof BachataError && e.code === 4291);
    assert.deepEqual(c.watching, ["bob"]);
    c.close();
  });
});
