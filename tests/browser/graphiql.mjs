// Drives GraphiQL in Debian's chromium for tests/it/graphiql_browser.rs.
// Usage: node graphiql.mjs <page url> <api key>. Speaks JSON lines: it
// prints {"step": …, …} as it goes, and after {"step": "subscribed"} reads
// one line from stdin (a lead id) and waits for the live feed to show it.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [url, key] = process.argv.slice(2);
const say = (step, fields = {}) => console.log(JSON.stringify({ step, ...fields }));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const browser = await chromium.launch({
  executablePath: process.env.LEADQL_CHROMIUM || "/usr/bin/chromium",
  // Root in CI containers: chromium's sandbox needs user namespaces.
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => say("pageerror", { message: e.message }));
  await page.goto(url);
  await page.waitForSelector(".graphiql-container", { timeout: 30000 });

  // The editors are CodeMirror 5 instances; the visible ones are the
  // active tab's.
  const editor = (which) =>
    page.evaluate((which) => {
      const cm = [...document.querySelectorAll(".CodeMirror")].filter(
        (e) => e.closest(which) && e.offsetParent !== null,
      )[0];
      return cm ? cm.CodeMirror.getValue() : null;
    }, which);
  const result = () => editor(".result-window");

  const openTab = async (name) => {
    await page.locator(".graphiql-tab", { hasText: name }).locator("button").first().click();
    await page.waitForFunction(
      (name) => document.querySelector(".graphiql-tab-active")?.textContent.includes(name),
      name,
    );
  };
  // Types the key into the Headers tab, as a user would paste it.
  const setHeaders = async () => {
    await page.getByText("Headers", { exact: true }).click();
    const headers = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror");
    await headers.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${key}` }));
  };
  const run = () => page.getByLabel("Execute query (Ctrl-Enter)").click();
  const waitFor = async (text, timeout = 20000) => {
    const until = Date.now() + timeout;
    for (;;) {
      const value = (await result()) || "";
      if (value.includes(text)) return value;
      if (Date.now() > until) return value;
      await page.waitForTimeout(100);
    }
  };

  // 1. With the key in the Headers tab (the API is closed), the schema
  // loads and the docs pane lists the root types.
  await openTab("LeadHistory");
  await setHeaders();
  await page.getByLabel("Re-fetch GraphQL schema").click();
  await page.getByLabel("Show Documentation Explorer").click();
  await page.waitForSelector(".graphiql-doc-explorer", { timeout: 20000 });
  await page.waitForFunction(
    () => document.querySelector(".graphiql-doc-explorer")?.textContent.includes("query: Query"),
    null,
    { timeout: 20000 },
  ).catch(() => {});
  say("docs", { text: await page.locator(".graphiql-doc-explorer").innerText() });

  // 2. The first tab, a lead's history, runs.
  await run();
  say("history", { result: await waitFor('"activities"') });

  // 3. The live feed: started, then shows a delivery made while it runs.
  await openTab("LiveDispositions");
  await setHeaders();
  await run();
  // A stop button replaces ▶ while a subscription runs.
  await page.getByLabel("Stop query (Ctrl-Enter)").waitFor({ timeout: 20000 }).catch(() => {});
  say("subscribed");
  const lead = (await lines.next()).value;
  say("event", { result: await waitFor(lead) });

  // 4. Today's counts.
  await openTab("TodaysCounts");
  await setHeaders();
  await run();
  say("counts", { result: await waitFor('"callStats"') });
} catch (e) {
  say("failed", { message: String(e && e.stack || e) });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
