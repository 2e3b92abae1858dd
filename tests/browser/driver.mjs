//! A line-oriented driver of Debian's headless Chromium through playwright-core, for the sign-in page
//! tests (tests/src/browser.rs): one JSON command per stdin line, one JSON answer per stdout line.
//!
//! It decides nothing: the Rust test says what to open, type, click, read and photograph, and reads
//! SMS codes and TOTP keys itself. The browser gets a fresh profile and the flags that keep it off the
//! (closed) network: no background services, no QUIC, no component updates, no sync.
//!
//! Usage: node driver.mjs --chromium /usr/bin/chromium --profile DIR
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const executablePath = arg("--chromium", "/usr/bin/chromium");
const profile = arg("--profile", null);
if (!profile) {
  console.error("--profile DIR is required");
  process.exit(2);
}

const TIMEOUT_MS = 15000;

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 480, height: 800 },
  deviceScaleFactor: 1,
});
context.setDefaultTimeout(TIMEOUT_MS);
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));

async function run(cmd) {
  switch (cmd.op) {
    case "goto": {
      const r = await page.goto(cmd.url, { waitUntil: "load" });
      return { status: r ? r.status() : 0 };
    }
    case "fill":
      await page.fill(cmd.selector, cmd.value);
      return {};
    case "click":
      await page.click(cmd.selector);
      return {};
    case "visible":
      await page.waitForSelector(cmd.selector, { state: "visible" });
      return {};
    case "enabled":
      await page.waitForSelector(cmd.selector + ":not([disabled])", {
        state: "visible",
        timeout: cmd.timeout_ms || TIMEOUT_MS,
      });
      return {};
    case "text":
      await page.waitForSelector(cmd.selector, { state: "visible" });
      return { text: (await page.textContent(cmd.selector)) || "" };
    case "click_capture": {
      // Clicks, and stops the first request that leaves for `prefix` (a provider the test plays
      // itself), answering its URL.
      const leaving = (url) => url.toString().startsWith(cmd.prefix);
      await page.route(leaving, (route) => route.abort());
      const request = page.waitForRequest((r) => leaving(r.url()));
      await page.click(cmd.selector);
      const r = await request;
      await page.unroute(leaving);
      return { url: r.url() };
    }
    case "url":
      return { url: page.url() };
    case "wait_url":
      await page.waitForURL((u) => u.toString().includes(cmd.contains));
      return { url: page.url() };
    case "attribute":
      return { value: await page.getAttribute(cmd.selector, cmd.name) };
    case "screenshot":
      await page.screenshot({ path: cmd.path, fullPage: true });
      return {};
    case "cookies":
      return { cookies: await context.cookies() };
    case "console_errors":
      return { errors: consoleErrors.splice(0) };
    case "quit":
      await context.close();
      return { bye: true };
    default:
      throw new Error("unknown op " + cmd.op);
  }
}

console.log(JSON.stringify({ ready: true, version: context.browser()?.version() ?? null }));
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, ...(await run(JSON.parse(line))) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  console.log(JSON.stringify(answer));
  if (answer.bye) break;
}
await context.close().catch(() => {});
process.exit(0);
