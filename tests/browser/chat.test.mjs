// The gateway's chat page (services/gateway/internal/webui) end to end:
// headless Chromium, driven by playwright-core, against the real suite
// started by the TypeScript SDK's test harness (libs/sdk-ts/test/harness.ts:
// the four services built from this repository under deploy/local, a
// redis-server of their own, free ports). deploy/local turns the
// development sign-in on, so the page signs in with a name.
//
// Alice and Bob, each in a browser context of their own (their own
// localStorage), sign in, add each other and chat; Bob's page closes and
// comes back; his browser goes offline and online; a room message. The
// screenshots go to SCREENSHOT_DIR (default ./out; `make browser-test
// SCREENSHOTS=docs/img` refreshes the ones in the docs).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { startSuite } from "../../libs/sdk-ts/dist-test/test/harness.js";

const here = dirname(fileURLToPath(import.meta.url));
const shots = process.env.SCREENSHOT_DIR || join(here, "out");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const ALICE = "@alice@localhost";
const BOB = "@bob@localhost";
const LOBBY = "!lobby@localhost";

let suite;
let browser;
const problems = [];

/** watch fails the test on uncaught page errors and CSP violations. */
function watch(page, who) {
  page.on("pageerror", (err) => problems.push(`${who}: uncaught ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`${who}: ${msg.text()}`);
  });
  return page;
}

async function newPage(ctx, who) {
  const page = watch(await ctx.newPage(), who);
  // Record every status each of my messages shows, in order, to check
  // that ✓ (100) comes before ✓✓ (300).
  await page.addInitScript(() => {
    window.__ticks = {};
    const scan = () => {
      for (const t of document.querySelectorAll("li.msg.mine .ticks")) {
        const id = t.closest("li").dataset.id;
        const seen = (window.__ticks[id] ??= []);
        if (seen[seen.length - 1] !== t.dataset.status) seen.push(t.dataset.status);
      }
    };
    new MutationObserver(scan).observe(document, { subtree: true, childList: true, attributes: true });
  });
  return page;
}

async function signIn(page, name) {
  await page.goto(suite.page);
  await page.locator("#signin-name").fill(name);
  await page.locator("#signin-submit").click();
  await connected(page);
}

async function connected(page) {
  await page.locator("#chat").waitFor({ state: "visible" });
  await page.locator("#conn-dot.online").waitFor();
}

async function addContact(page, name) {
  await page.locator("#add-contact-name").fill(name);
  await page.locator("#add-contact-name").press("Enter");
}

function conv(page, id) {
  return page.locator(`#contacts button[data-conv="${id}"], #rooms button[data-conv="${id}"]`);
}

/** send types text into the composer key by key (so typing goes out) and sends it. */
async function send(page, text, { delay = 0 } = {}) {
  const input = page.locator("#composer-input");
  await input.pressSequentially(text, { delay });
  await input.press("Enter");
  return page.locator("li.msg.mine", { hasText: text }).last();
}

async function ticks(msg) {
  return msg.locator(".ticks").getAttribute("data-status");
}

async function tickHistory(page, msg) {
  const id = await msg.getAttribute("data-id");
  return page.evaluate((i) => window.__ticks[i] ?? [], id);
}

async function presenceOf(page, id) {
  return conv(page, id).locator(".dot").getAttribute("data-presence");
}

/** step runs one part of the story as a subtest; after a failure the rest are skipped. */
let broken = false;
async function step(t, name, fn) {
  await t.test(name, async (st) => {
    if (broken) {
      st.skip("an earlier step failed");
      return;
    }
    try {
      await fn();
    } catch (err) {
      broken = true;
      throw new Error(`${err instanceof Error ? err.message : err}\n--- suite logs ---\n${suite.logs().slice(-3000)}`, { cause: err });
    }
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, name) });
}

describe("the chat page in Chromium", { timeout: 150_000 }, () => {
  before(async () => {
    mkdirSync(shots, { recursive: true });
    suite = await startSuite();
    suite.page = suite.url.replace(/^ws/, "http").replace(/\/ws$/, "/");
    browser = await chromium.launch({ executablePath });
  }, { timeout: 120_000 });

  after(async () => {
    await browser?.close();
    await suite?.stop();
  }, { timeout: 30_000 });

  it("two users chat, go offline, come back, and get every message", { timeout: 120_000 }, async (t) => {
    const opts = { viewport: { width: 900, height: 560 }, colorScheme: "light", locale: "en-GB", timezoneId: "UTC" };
    const ctxA = await browser.newContext(opts);
    const ctxB = await browser.newContext(opts);
    ctxA.setDefaultTimeout(15_000);
    ctxB.setDefaultTimeout(15_000);
    const alice = await newPage(ctxA, "alice");
    let bob = await newPage(ctxB, "bob");

    try {
      await step(t, "sign in by name, add each other, presence online", async () => {
        await signIn(alice, "alice");
        await signIn(bob, "bob");
        // The development sign-in made both members of the demo room.
        await conv(alice, LOBBY).waitFor();
        await conv(bob, LOBBY).waitFor();
        await addContact(alice, "bob");
        await addContact(bob, "alice");
        await conv(alice, BOB).locator(".dot.online").waitFor();
        await conv(bob, ALICE).locator(".dot.online").waitFor();
        assert.equal(await alice.locator("#conv-title").textContent(), "bob");
        assert.equal(await alice.locator("#conv-sub").textContent(), "online");
      });

      await step(t, "typing shows at the peer; the message gets ✓ then ✓✓", async () => {
        const input = alice.locator("#composer-input");
        await input.pressSequentially("Hi Bob! Lunch at noon?", { delay: 15 });
        await bob.locator("#typing", { hasText: "alice is typing…" }).waitFor();
        await conv(bob, ALICE).locator(".preview.typing").waitFor();
        await shot(bob, "chat-typing.png");
        await input.press("Enter");
        const sent = alice.locator("li.msg.mine", { hasText: "Hi Bob! Lunch at noon?" });
        await sent.locator('.ticks[data-status="delivered"]').waitFor();
        assert.deepEqual(await tickHistory(alice, sent), ["pending", "sent", "delivered"]);
        assert.equal(await sent.locator(".ticks").textContent(), "✓✓");
        await bob.locator("li.msg.theirs", { hasText: "Hi Bob! Lunch at noon?" }).waitFor();
        // Sending ends the indicator.
        await bob.waitForFunction(() => document.getElementById("typing")?.textContent === "");

        const reply = await send(bob, "Sure! The usual place?");
        await reply.locator('.ticks[data-status="delivered"]').waitFor();
        await alice.locator("li.msg.theirs", { hasText: "Sure! The usual place?" }).waitFor();
        const more = await send(alice, "Yes, see you there.");
        await more.locator('.ticks[data-status="delivered"]').waitFor();
        await shot(alice, "chat.png");
      });

      await step(t, "Bob closes the page: his dot goes grey, Alice's message gets ✓ only", async () => {
        await bob.close();
        await conv(alice, BOB).locator(".dot.offline").waitFor();
        await alice.locator("#conv-sub", { hasText: /^(last seen|offline)/ }).waitFor();
        const msg = await send(alice, "Are you still there?");
        await msg.locator('.ticks[data-status="sent"]').waitFor();
        // Queued for Bob's device, not delivered: it stays ✓.
        await alice.waitForTimeout(1500);
        assert.equal(await ticks(msg), "sent");
        assert.equal(await msg.locator(".ticks").textContent(), "✓");
        await shot(alice, "chat-offline.png");
      });

      await step(t, "Bob comes back: he gets the message, Alice's tick becomes ✓✓", async () => {
        bob = await newPage(ctxB, "bob");
        await bob.goto(suite.page); // signed in still (localStorage): no sign-in form
        await connected(bob);
        // The history comes from localStorage, the new message from the server.
        await bob.locator("li.msg.mine", { hasText: "Sure! The usual place?" }).waitFor();
        await bob.locator("li.msg.theirs", { hasText: "Are you still there?" }).waitFor();
        assert.equal(await bob.locator("li.msg", { hasText: "Are you still there?" }).count(), 1);
        const msg = alice.locator("li.msg.mine", { hasText: "Are you still there?" });
        await msg.locator('.ticks[data-status="delivered"]').waitFor();
        await conv(alice, BOB).locator(".dot.online").waitFor();
        assert.equal(await presenceOf(alice, BOB), "online");
        await send(bob, "Back now. Sorry!");
        await alice.locator("li.msg.theirs", { hasText: "Back now. Sorry!" }).waitFor();
      });

      await step(t, "a room message reaches the other member", async () => {
        await conv(alice, LOBBY).click();
        assert.equal(await alice.locator("#conv-title").textContent(), "#lobby");
        const msg = await send(alice, "Hello, lobby!");
        await conv(bob, LOBBY).locator(".badge", { hasText: "1" }).waitFor();
        await msg.locator('.ticks[data-status="delivered"]').waitFor();
        await conv(bob, LOBBY).click();
        const got = bob.locator("li.msg.theirs", { hasText: "Hello, lobby!" });
        await got.waitFor();
        assert.equal(await got.locator(".from").textContent(), "alice");
        await send(bob, "Hi everyone");
        await alice.locator("li.msg.theirs", { hasText: "Hi everyone" }).waitFor();
      });

      await step(t, "offline browser: reconnect banner, message waits, then arrives", async () => {
        await conv(bob, ALICE).click();
        await conv(alice, BOB).click();
        await ctxB.setOffline(true);
        await bob.locator("#banner").waitFor({ state: "visible" });
        await conv(alice, BOB).locator(".dot.offline").waitFor();
        const msg = await send(alice, "Ping while you are offline");
        await msg.locator('.ticks[data-status="sent"]').waitFor();
        await shot(bob, "chat-reconnecting.png");
        await ctxB.setOffline(false);
        await bob.locator("#banner").waitFor({ state: "hidden" });
        await bob.locator("li.msg.theirs", { hasText: "Ping while you are offline" }).waitFor();
        await msg.locator('.ticks[data-status="delivered"]').waitFor();
        await conv(alice, BOB).locator(".dot.online").waitFor();
      });

      await step(t, "narrow screens show one pane at a time", async () => {
        await bob.setViewportSize({ width: 390, height: 640 });
        await bob.locator("#messages").waitFor({ state: "visible" });
        assert.equal(await bob.locator(".sidebar").isVisible(), false);
        await shot(bob, "chat-narrow.png");
        await bob.locator("#back").click();
        await bob.locator(".sidebar").waitFor({ state: "visible" });
        assert.equal(await bob.locator("#messages").isVisible(), false);
      });

      await step(t, "no page errors, no CSP violations", async () => {
        assert.deepEqual(problems, []);
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });
});
