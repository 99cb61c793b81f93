// The real Bachata suite for the SDK's tests: the four services built from
// this repository and run by deploy/local, against a redis-server of their
// own, on ports of their own (BACHATA_LOCAL_BASE_PORT), so they never meet
// a developer's `make run`.
//
// Every process is started in a new process group under a small reaper
// shell that kills the group when this test process goes away, however it
// goes (its stdin pipe closes): no suite outlives its tests.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** repoRoot is the monorepo: this file is libs/sdk-ts/dist-test/test/harness.js. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

// The reaper: runs "$@" in the background, kills the whole process group
// when stdin (a pipe from this process) closes or when the command exits.
const reaper = `
exec 3<&0
"$@" </dev/null &
pid=$!
{ read -r _ <&3; kill -KILL 0; } &
wait "$pid"
kill -KILL 0
`;

const groups = new Set<number>();

function killAllGroups(): void {
  for (const g of groups) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  groups.clear();
}
process.on("exit", killAllGroups);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    killAllGroups();
    process.exit(128 + (sig === "SIGINT" ? 2 : 15));
  });
}

/** Group is a process started under the reaper, in its own process group. */
class Group {
  private readonly out: string[] = [];
  readonly child: ChildProcess;
  readonly pgid: number;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: { cwd: string; env: NodeJS.ProcessEnv },
  ) {
    this.child = spawn("sh", ["-c", reaper, "reaper", cmd, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (this.child.pid === undefined) throw new Error(`cannot start ${name}`);
    this.pgid = this.child.pid;
    groups.add(this.pgid);
    const keep = (b: Buffer): void => {
      this.out.push(b.toString());
      if (this.out.length > 400) this.out.splice(0, this.out.length - 400);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    // Nothing of ours should keep the test process alive.
    this.child.unref();
    (this.child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (this.child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (this.child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }

  output(): string {
    return this.out.join("");
  }

  alive(): boolean {
    try {
      process.kill(-this.pgid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** stop sends sig to the group and waits until the group is empty, then SIGKILLs what is left after ms. */
  async stop(sig: NodeJS.Signals = "SIGTERM", ms = 10_000): Promise<void> {
    try {
      process.kill(-this.pgid, sig);
    } catch {
      // Already gone.
    }
    await this.gone(ms).catch(() => {
      try {
        process.kill(-this.pgid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    });
    await this.gone(5_000);
    groups.delete(this.pgid);
  }

  /** gone waits until no process of the group is left. */
  async gone(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.alive()) {
      if (Date.now() > end) throw new Error(`${this.name}: still running after ${ms} ms`);
      await sleep(50);
    }
  }

  /** pidOf finds a process of the group by its command name (Linux /proc). */
  pidOf(comm: string): number | undefined {
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${d}/stat`, "utf8");
      } catch {
        continue;
      }
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
      const open = stat.indexOf("(");
      const close = stat.lastIndexOf(")");
      const name = stat.slice(open + 1, close);
      const [state, , pgrp] = stat.slice(close + 2).split(" ");
      if (name === comm && Number(pgrp) === this.pgid && state !== "Z") return Number(d);
    }
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? res(a.port) : rej(new Error("no port"))));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

/**
 * freeBasePort picks a BACHATA_LOCAL_BASE_PORT whose eight ports (see
 * deploy/local) are free, below Linux's ephemeral range so that no outgoing
 * connection takes one meanwhile.
 */
async function freeBasePort(): Promise<number> {
  const offsets = [0, 1, 101, 102, 103, 1001, 1002, 1003];
  for (let i = 0; i < 50; i++) {
    const base = 10_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (const o of offsets) {
      if (!(await portIsFree(base + o))) {
        ok = false;
        break;
      }
    }
    if (ok) return base;
  }
  throw new Error("no free base port found");
}

async function waitTCP(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const c = tcpConnect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), res(true)));
      c.once("error", () => res(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await sleep(50);
  }
}

/** Suite is a running Bachata suite. */
export interface Suite {
  /** The gateway's WebSocket URL (`ws://127.0.0.1:<port>/ws`). */
  url: string;
  /** The gateway's admin base URL. */
  adminUrl: string;
  adminToken: string;
  /** token mints an HS256 JWT for user, valid ttlSec. */
  token(user: string, ttlSec?: number): string;
  /**
   * crashGateway kills the gateway with SIGKILL. deploy/local then stops
   * the other services and exits; Redis keeps everything.
   */
  crashGateway(): Promise<void>;
  /** start starts the services again, on the same ports, after crashGateway. */
  start(): Promise<void>;
  /** stop ends everything and removes the temporary directory. */
  stop(): Promise<void>;
  /** logs is the recent output of the services, for failure messages. */
  logs(): string;
}

/**
 * startSuite builds the binaries (the Go build cache makes this quick after
 * the first time), starts redis-server and deploy/local, and waits until
 * the gateway is ready.
 */
export async function startSuite(): Promise<Suite> {
  const tmp = mkdtempSync(join(tmpdir(), "bachata-sdk-test-"));
  const bin = join(tmp, "bin");
  mkdirSync(bin);
  const env = process.env;
  try {
    await run("go", ["version"]);
  } catch {
    throw new Error("the SDK tests need Go to build the suite: `go` is not on PATH");
  }
  await run(
    "go",
    ["build", "-o", bin + "/", "./services/gateway/cmd/gateway", "./services/router/cmd/router", "./services/delivery/cmd/delivery", "./services/presence/cmd/presence"],
    { cwd: repoRoot, env, maxBuffer: 1 << 24 },
  );
  const local = join(tmp, "bachata-local");
  await run("go", ["build", "-o", local, "./deploy/local"], { cwd: repoRoot, env, maxBuffer: 1 << 24 });

  const redisDir = join(tmp, "redis");
  mkdirSync(redisDir);
  const redisPort = await freePort();
  const redis = new Group(
    "redis-server",
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", redisDir],
    { cwd: redisDir, env: process.env },
  );
  try {
    await waitTCP(redisPort, 10_000);
  } catch (err) {
    await redis.stop("SIGKILL");
    throw new Error(`redis-server did not start (is it installed? \`make deps\`): ${String(err)}\n${redis.output()}`);
  }

  const base = await freeBasePort();
  const secret = randomBytes(24).toString("hex");
  const adminToken = randomBytes(24).toString("hex");
  const runDir = join(tmp, "run");
  mkdirSync(runDir);
  const suiteEnv: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
    BACHATA_LOCAL_BASE_PORT: String(base),
    BACHATA_JWT_SECRET: secret,
    BACHATA_ADMIN_TOKEN: adminToken,
  };
  delete suiteEnv["NATS_URL"]; // deploy/local's embedded NATS
  let services: Group | undefined;
  const history: string[] = [];

  const start = async (): Promise<void> => {
    services = new Group("deploy/local", local, [join(tmp, "bin")], { cwd: runDir, env: suiteEnv });
    const end = Date.now() + 60_000;
    const g = services;
    while (!g.output().includes("Bachata is running")) {
      if (!g.alive() || Date.now() > end) {
        throw new Error(`the suite did not start:\n${g.output().slice(-4000)}`);
      }
      await sleep(50);
    }
  };
  const stopServices = async (): Promise<void> => {
    if (!services) return;
    history.push(services.output());
    await services.stop();
    services = undefined;
  };

  try {
    await start();
  } catch (err) {
    await stopServices();
    await redis.stop("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `ws://127.0.0.1:${base}/ws`,
    adminUrl: `http://127.0.0.1:${base + 1}`,
    adminToken,
    token: (user, ttlSec = 3600) => jwtHS256(secret, user, ttlSec),
    async crashGateway() {
      const g = services;
      if (!g) throw new Error("the suite is not running");
      const pid = g.pidOf("gateway");
      if (pid === undefined) throw new Error("no gateway process found");
      process.kill(pid, "SIGKILL");
      // deploy/local notices, stops the rest and exits; the reaper follows.
      await g.gone(20_000);
      history.push(g.output());
      groups.delete(g.pgid);
      services = undefined;
    },
    start,
    async stop() {
      await stopServices();
      await redis.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
    logs: () => (history.join("") + (services?.output() ?? "")).slice(-8000),
  };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

/** jwtHS256 signs a token the way deploy/local's `token` command does. */
export function jwtHS256(secret: string, sub: string, ttlSec: number): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub, iat: now, exp: now + ttlSec }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
