// Drives the /ui console in Debian's chromium, as a user would, against a running hookrelay.
// Started by tests/tests/console.rs, which starts redis-server, hookrelay and the receivers
// and passes everything through the environment:
//
//   HOOKRELAY_BASE      e.g. http://127.0.0.1:8123
//   HOOKRELAY_ADMIN     the admin token; HOOKRELAY_VIEWER: a viewer token of project `demo`
//   RECEIVER_OK         a receiver answering 200 with a JSON body
//   RECEIVER_FAIL       a receiver answering 500 with a JSON body
//   HANGING_WEBHOOK     a webhook whose receiver never answers, its deliveries already published
//   SCREENSHOTS         where to save a screenshot of each page
//   CHROMIUM            the browser (default /usr/bin/chromium)
//
// Any failed step, page error, failed request or browser console error fails the run.
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("HOOKRELAY_BASE");
const ADMIN = env("HOOKRELAY_ADMIN");
const VIEWER = env("HOOKRELAY_VIEWER");
const OK_URL = env("RECEIVER_OK");
const FAIL_URL = env("RECEIVER_FAIL");
const HANGING = env("HANGING_WEBHOOK");
const SHOTS = env("SCREENSHOTS");
const PROJECT = "demo";
mkdirSync(SHOTS, { recursive: true });

const problems = [];
// Console errors a step expects (a refused sign-in is logged by the browser as a failed load).
let expectedErrors = [];
const started = Date.now();
let stepName = "start";
function step(name) {
  stepName = name;
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
}
function check(cond, what) {
  if (!cond) throw new Error(`${stepName}: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // No background traffic: the machine's network is closed, and the run needs none.
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light" });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
const page = await context.newPage();
page.setDefaultTimeout(15000);

page.on("console", (m) => {
  if (m.type() !== "error" && m.type() !== "warning") return;
  if (expectedErrors.some((re) => re.test(m.text()))) return;
  problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("requestfailed", (r) => {
  // A reload cuts short the refresh that was under way: that is no failure.
  if (r.failure()?.errorText !== "net::ERR_ABORTED") problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
});
page.on("request", (r) => {
  for (const t of [ADMIN, VIEWER]) if (r.url().includes(t)) problems.push(`a token in a URL: ${r.method()} ${r.url().replace(t, "<token>")}`);
});

/// The page must not scroll sideways at this width.
async function noSidewaysScroll(width, what) {
  await page.setViewportSize({ width, height: 800 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
  }));
  check(scroll <= client, `${what} at ${width} px scrolls sideways: ${scroll} > ${client}`);
}

/// The heading of the page is visible and not covered by anything (a sticky bar, say).
async function headingUncovered(id) {
  const covered = await page.evaluate((id) => {
    const h = document.getElementById(id);
    h.scrollIntoView();
    window.scrollBy(0, -2);
    const r = h.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + Math.min(20, r.width / 2), r.top + r.height / 2);
    return hit && (h === hit || h.contains(hit)) ? null : (hit ? hit.tagName + "." + hit.className : "nothing");
  }, id);
  check(covered === null, `heading #${id} is covered by ${covered}`);
}

/// No word in these table cells is broken across two lines.
async function noMidWordBreaks(selector) {
  const broken = await page.evaluate((selector) => {
    const out = [];
    for (const cell of document.querySelectorAll(selector)) {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const re = /\S+/g;
        let m;
        while ((m = re.exec(n.data))) {
          const range = document.createRange();
          range.setStart(n, m.index);
          range.setEnd(n, m.index + m[0].length);
          const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
          if (tops.size > 1) out.push(m[0]);
        }
      }
    }
    return out;
  }, selector);
  check(broken.length === 0, `words broken across lines: ${broken.slice(0, 5).join(", ")}`);
}

/// Every visible control has a name a screen reader can read.
async function controlsLabelled() {
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const c of document.querySelectorAll("input, select, textarea, button, a[href]")) {
      if (!c.checkVisibility()) continue;
      const named = (c.labels && c.labels.length) || c.getAttribute("aria-label") || c.getAttribute("aria-labelledby") ||
        (c.tagName === "BUTTON" || c.tagName === "A") && c.textContent.trim();
      if (!named) out.push(c.outerHTML.slice(0, 80));
    }
    return out;
  }, null);
  check(unnamed.length === 0, `controls without a label: ${unnamed.join(" | ")}`);
}

// The names of the controls that change something (a viewer must not be offered them).
const WRITE_CONTROL = /^(New webhook|Publish an event|Create the first one|Redeliver|Test webhook \S+|Edit webhook \S+|Delete webhook \S+|Enable webhook \S+|Disable webhook \S+)$/;

/// The names of the visible controls of the page that change something, and of those the
/// keyboard reaches (walking the tab order from the top of the page).
async function writeControlsOffered() {
  const visible = await page.evaluate((source) => {
    const re = new RegExp(source);
    const out = [];
    for (const c of document.querySelectorAll("button, a[href], input, select, textarea")) {
      const name = (c.getAttribute("aria-label") || c.textContent || "").trim();
      if (re.test(name) && c.checkVisibility()) out.push(name);
    }
    return out;
  }, WRITE_CONTROL.source);
  // From the skip link, the first stop of the page, until the focus leaves the page or
  // comes back to where it started.
  const reached = [];
  await page.locator("a.skip").focus();
  for (let i = 0; i < 300; i++) {
    await page.keyboard.press("Tab");
    const name = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body || a.matches("a.skip")) return null;
      return (a.getAttribute("aria-label") || a.textContent || "").trim();
    });
    if (name === null) break;
    if (WRITE_CONTROL.test(name)) reached.push(name);
  }
  return { visible, reached };
}

/// Dismisses every message (each was checked where it appeared).
async function dismissAll() {
  const buttons = page.getByRole("button", { name: "Dismiss message" });
  while (await buttons.count()) await buttons.first().click();
}

/// Waits until the page has refreshed itself once more (its "Updated …" line changes).
async function nextRefresh(page_) {
  const id = `#${page_}-updated`;
  const before = await page.textContent(id);
  await page.waitForFunction(([id, before]) => document.querySelector(id).textContent !== before, [id, before], { timeout: 15000 });
}

async function shot(name) {
  await page.evaluate(() => new Promise((r) => { window.scrollTo(0, 0); requestAnimationFrame(() => r()); }));
  await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: false });
}

async function gotoPage(name) {
  await page.locator(`#nav a[data-page="${name}"]`).click();
  await page.locator(`#page-${name}`).waitFor({ state: "visible" });
}

async function api(method, path, body) {
  const r = await fetch(`${BASE}/v2.1/projects/${PROJECT}${path}`, {
    method, headers: { "Authorization": `Token ${ADMIN}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

try {
  step("the favicon is served");
  const icon = await fetch(`${BASE}/favicon.ico`);
  check(icon.status === 200 && icon.headers.get("content-type") === "image/x-icon", `favicon: ${icon.status}`);

  step("sign in with the admin token, pressing Enter");
  await page.goto(`${BASE}/ui`);
  await page.locator("#signin-token").waitFor();
  check(await page.inputValue("#signin-project") === PROJECT, "the project does not default to demo");
  await controlsLabelled();
  await noSidewaysScroll(375, "sign-in");
  await page.setViewportSize({ width: 1280, height: 860 });
  await shot("signin");
  expectedErrors = [/status of 401/];
  await page.locator("#signin-token").fill("not-a-token-at-all");
  await page.locator("#signin-token").press("Enter");
  await page.locator("#signin-error", { hasText: "This token is not accepted." }).waitFor();
  check(await page.evaluate(() => sessionStorage.getItem("hookrelay.token")) === null, "a refused token was kept");
  expectedErrors = [];
  await page.locator("#signin-token").fill(ADMIN);
  await page.locator("#signin-token").press("Enter");
  await page.locator("#overview-title").waitFor({ state: "visible" });
  check(!page.url().includes(ADMIN), "the token is in the page URL");
  check(await page.evaluate(() => sessionStorage.getItem("hookrelay.token")) === ADMIN, "the token is not in session storage");
  check(await page.evaluate((t) => !JSON.stringify(localStorage).includes(t), ADMIN), "the token is in local storage");

  step("create a webhook in the dialog");
  await gotoPage("webhooks");
  // Keyboard: Enter opens the dialog on its first field, Escape closes it and returns focus.
  await page.locator("#new-webhook").focus();
  await page.keyboard.press("Enter");
  await page.locator("#webhook-dialog").waitFor({ state: "visible" });
  check(await page.evaluate(() => document.activeElement.id) === "wd-name", "the dialog does not start on its first field");
  await page.keyboard.press("Escape");
  await page.locator("#webhook-dialog").waitFor({ state: "hidden" });
  check(await page.evaluate(() => document.activeElement.id) === "new-webhook", "focus did not return to New webhook");
  await page.keyboard.press("Enter");
  await page.locator("#webhook-dialog").waitFor({ state: "visible" });
  await controlsLabelled();
  await page.fill("#wd-name", "orders");
  await page.fill("#wd-url", OK_URL);
  await page.fill("#wd-object-name", "*");
  await page.fill("#wd-timeout", "5");
  await page.fill("#wd-labels", "team:shop");
  await page.locator("#wd-add-header").click();
  await page.locator("#wd-headers .header-row input").nth(0).fill("X-Api-Key");
  await page.locator("#wd-headers .header-row input").nth(1).fill("k-123");
  await page.locator("#wd-headers .header-row input[type=checkbox]").check();
  await page.fill("#wd-token", "receiver-token-1");
  await shot("webhook-dialog");
  await page.locator("#wd-save").click();
  await page.locator("#webhook-dialog").waitFor({ state: "hidden" });
  await page.locator(".message.ok", { hasText: "Created webhook orders" }).waitFor();
  const row = page.locator('tr[data-webhook="orders"]');
  await row.waitFor();

  step("edit it: token and protected header read as set, never shown");
  await row.getByRole("button", { name: "Edit webhook orders" }).click();
  await page.locator("#webhook-dialog").waitFor({ state: "visible" });
  check(await page.inputValue("#wd-token") === "", "the token is shown back");
  const tokenState = await page.textContent("#wd-token-state");
  check(/\bset\b/.test(tokenState) && !/not set/.test(tokenState), `token state reads ${tokenState}`);
  check(await page.locator("#wd-headers .header-row input").nth(1).inputValue() === "", "the protected header value is shown back");
  check((await page.locator("#wd-headers .header-row input").nth(1).getAttribute("placeholder")).startsWith("set"), "the protected header does not read as set");
  await page.fill("#wd-description", "Orders service");
  await page.locator("#wd-save").click();
  await page.locator(".message.ok", { hasText: "Saved webhook orders" }).waitFor();
  const saved = await api("GET", "/webhooks/orders");
  check(saved.description === "Orders service" && saved.headers[0].protected && saved.headers[0].value === null, "the edit did not keep the protected header");

  step("Test webhook against the 200 receiver: success, copy the full response");
  await row.getByRole("button", { name: "Test webhook orders" }).click();
  const okChip = row.locator(".test-chip.success");
  await okChip.waitFor({ timeout: 20000 });
  check((await okChip.textContent()).includes("Test succeeded"), "no success chip");
  await okChip.hover();
  const okTip = row.locator(".tip");
  await okTip.waitFor({ state: "visible" });
  const okTipText = await okTip.textContent();
  check(okTipText.includes("200") && /\d+ ms/.test(okTipText), `tooltip lacks status code or time: ${okTipText}`);
  await shot("test-webhook");
  await okTip.getByRole("button", { name: "Copy full response" }).click();
  await okTip.getByRole("button", { name: "Copied" }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied.includes("HTTP 200") && copied.includes("content-type") && copied.includes('"received"'), `clipboard: ${copied}`);

  step("Test webhook in the dialog against the 500 receiver: failure with the answer");
  await page.mouse.move(0, 0);
  await page.locator("#new-webhook").click();
  await page.fill("#wd-name", "billing");
  await page.fill("#wd-url", FAIL_URL);
  await page.fill("#wd-timeout", "5");
  await page.check("#wd-retry");
  await page.locator("#wd-test").click();
  const badChip = page.locator("#wd-test-result .test-chip.failure");
  await badChip.waitFor({ timeout: 20000 });
  await badChip.focus(); // keyboard: the tooltip opens on focus too
  const badTip = page.locator("#wd-test-result .tip");
  await badTip.waitFor({ state: "visible" });
  const badTipText = await badTip.textContent();
  check(badTipText.includes("500") && badTipText.includes("database is down"), `failure tooltip: ${badTipText}`);
  await shot("test-webhook-failed");
  await badTip.getByRole("button", { name: "Copy full response" }).click();
  const copiedBad = await page.evaluate(() => navigator.clipboard.readText());
  check(copiedBad.includes("HTTP 500") && copiedBad.includes("database is down"), `clipboard: ${copiedBad}`);
  await page.keyboard.press("Escape"); // closes the tooltip, not the dialog
  check(await page.locator("#webhook-dialog").isVisible(), "Escape on the tooltip closed the dialog");
  await page.locator("#wd-save").click();
  await page.locator(".message.ok", { hasText: "Created webhook billing" }).waitFor();

  step("publish an event from the console; see the delivery and its attempts");
  await gotoPage("deliveries");
  await page.locator("#publish-event").click();
  await page.locator("#publish-dialog").waitFor({ state: "visible" });
  await controlsLabelled();
  await page.fill("#pd-data", '{"request_id": "r-1", "status": "completed"}');
  await page.locator("#pd-submit").click();
  await page.locator(".message.ok", { hasText: "2 deliveries queued" }).waitFor();
  await page.selectOption("#f-webhook", "orders");
  const delivery = page.locator('#delivery-rows tr[data-delivery]').filter({ has: page.locator(".badge.succeeded") }).first();
  await delivery.waitFor({ timeout: 20000 });
  const id = await delivery.getAttribute("data-delivery");
  await delivery.getByRole("button", { name: `Details of delivery ${id}` }).click();
  const detail = page.locator(`#detail-${id}`);
  await detail.waitFor({ state: "visible" });
  const attemptText = await detail.locator("table.attempts").textContent();
  check(attemptText.includes("200") && /\d+ ms/.test(attemptText), `attempts: ${attemptText}`);

  step("redeliver it: the message stays, the place is kept across auto-refresh");
  await detail.getByRole("button", { name: "Redeliver" }).click();
  const redelivered = page.locator(".message.ok", { hasText: `Redelivery of ${id} queued as attempt 2` });
  await redelivered.waitFor();
  await page.waitForFunction((id) => {
    const row = document.querySelector(`tr[data-delivery="${id}"]`);
    return row && row.children[4].textContent.trim() === "2" && row.querySelector(".badge.succeeded");
  }, id, { timeout: 20000 });
  await nextRefresh("deliveries");
  check(await redelivered.isVisible(), "the redeliver message vanished");
  check(await detail.isVisible(), "the open delivery closed on refresh");
  check((await detail.locator("table.attempts tbody tr").count()) === 2, "the detail does not show both attempts");
  await page.selectOption("#f-webhook", "");
  await page.locator('#delivery-rows tr[data-delivery]').nth(1).waitFor();
  await page.getByRole("button", { name: `Details of delivery ${id}` }).click();
  await detail.waitFor({ state: "visible" });
  await headingUncovered("deliveries-title");
  await noMidWordBreaks("#delivery-rows td");
  await controlsLabelled();
  await dismissAll();
  await shot("deliveries");

  step("the hanging endpoint turns to circuit open in the overview");
  await gotoPage("overview");
  const hanging = page.locator(`#attention li[data-webhook="${HANGING}"][data-state="circuit_open"]`);
  await hanging.waitFor({ timeout: 40000 });
  const why = await hanging.textContent();
  check(/Circuit open/.test(why) && /failures in a row/.test(why) && /since/.test(why), `circuit open entry: ${why}`);
  // The chart draws GET …/stats: successes, retries (422s from "reports") and failures.
  await page.waitForFunction(() => ["succeeded", "retried", "failed"].every((k) => document.querySelector(`#chart rect.${k}`)), null, { timeout: 20000 });
  check(Number((await page.textContent("#t-succeeded")).replace(/,/g, "")) >= 6, `delivered: ${await page.textContent("#t-succeeded")}`);
  check(/^p50 \d/.test(await page.textContent("#t-p50")), `no p50 latency: ${await page.textContent("#t-p50")}`);
  check(/^p99 \d/.test(await page.textContent("#t-p99")), `no p99 latency: ${await page.textContent("#t-p99")}`);
  check(/^\d+ ready · \d+ scheduled · \d+ in flight$/.test(await page.textContent("#t-queue-sub")), "no queue depth");
  check(Number(await page.textContent("#t-workers")) >= 1, `workers alive: ${await page.textContent("#t-workers")}`);
  await headingUncovered("overview-title");
  await controlsLabelled();
  await shot("overview");

  step("the webhooks page: health, last result, sparkline");
  await gotoPage("webhooks");
  const hangRow = page.locator(`tr[data-webhook="${HANGING}"]`);
  await hangRow.locator(".badge.circuit_open").waitFor({ timeout: 15000 });
  await page.locator('tr[data-webhook="orders"] .spark rect.succeeded').first().waitFor({ timeout: 15000 });
  await headingUncovered("webhooks-title");
  await noMidWordBreaks("#webhook-rows td");
  await controlsLabelled();
  await shot("webhooks");

  step("disable and enable with the keyboard; delete with confirmation");
  const billing = page.locator('tr[data-webhook="billing"]');
  await billing.getByRole("button", { name: "Disable webhook billing" }).focus();
  await page.keyboard.press("Enter");
  await page.locator(".message.ok", { hasText: "Disabled webhook billing" }).waitFor();
  await billing.locator(".badge.disabled").waitFor();
  await billing.getByRole("button", { name: "Enable webhook billing" }).click();
  await page.locator(".message.ok", { hasText: "Enabled webhook billing" }).waitFor();
  await billing.getByRole("button", { name: "Delete webhook billing" }).click();
  await page.locator("#confirm-dialog").waitFor({ state: "visible" });
  await page.keyboard.press("Escape");
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  check(await billing.isVisible(), "Escape deleted the webhook");
  await billing.getByRole("button", { name: "Delete webhook billing" }).click();
  await page.locator("#cd-ok").click();
  await page.locator(".message.ok", { hasText: "Deleted webhook billing" }).waitFor();
  await billing.waitFor({ state: "detached" });
  await nextRefresh("webhooks");
  check(await page.locator(".message.ok", { hasText: "Deleted webhook billing" }).isVisible(), "the delete message vanished");
  await page.locator(".message.ok", { hasText: "Deleted webhook billing" }).getByRole("button", { name: "Dismiss message" }).click();
  check(!(await page.locator(".message.ok", { hasText: "Deleted webhook billing" }).count()), "a dismissed message stayed");

  step("375 px and 420 px: no sideways scroll on any page");
  for (const width of [375, 420]) {
    for (const name of ["overview", "webhooks", "deliveries"]) {
      await gotoPage(name);
      await nextRefresh(name);
      await noSidewaysScroll(width, name);
      await headingUncovered(`${name}-title`);
      if (width === 375 && name !== "deliveries") await shot(`${name}-375`);
    }
  }
  await gotoPage("webhooks");
  await noSidewaysScroll(375, "webhooks");
  const chip = page.locator('tr[data-webhook="orders"] .test-chip.success');
  await chip.focus();
  const tip = page.locator('tr[data-webhook="orders"] .tip');
  await tip.waitFor({ state: "visible" });
  const box = await tip.boundingBox();
  check(box.x >= 0 && box.x + box.width <= 375, `the test tooltip leaves the screen: ${JSON.stringify(box)}`);
  await noSidewaysScroll(375, "a test tooltip");
  await page.keyboard.press("Escape");
  await page.locator('tr[data-webhook="orders"]').getByRole("button", { name: "Edit webhook orders" }).click();
  await noSidewaysScroll(375, "the webhook dialog");
  await page.keyboard.press("Escape");
  await page.setViewportSize({ width: 1280, height: 860 });

  step("dark mode follows the system");
  await page.emulateMedia({ colorScheme: "dark" });
  await gotoPage("overview");
  await page.locator("#attention li").first().waitFor();
  check(await page.evaluate(() => getComputedStyle(document.body).backgroundColor) !== "rgb(245, 246, 248)", "no dark colours");
  await shot("overview-dark");
  await page.emulateMedia({ colorScheme: "light" });

  step("the admin is offered every control that changes something, and told its role");
  await page.locator("#who-role-name", { hasText: "admin" }).waitFor();
  await gotoPage("webhooks");
  await page.locator('tr[data-webhook="orders"]').waitFor();
  {
    const { visible, reached } = await writeControlsOffered();
    for (const name of ["New webhook", "Test webhook orders", "Edit webhook orders", "Delete webhook orders"]) {
      check(visible.includes(name), `the admin is not shown "${name}": ${visible.join(", ")}`);
      check(reached.includes(name), `the keyboard does not reach "${name}" for the admin`);
    }
  }
  await gotoPage("deliveries");
  check(await page.locator("#publish-event").isVisible(), "the admin is not offered Publish an event");

  step("sign out; sign in with a project viewer token; the project is remembered");
  await page.locator("#sign-out").click();
  await page.locator("#signin-token").waitFor({ state: "visible" });
  check(await page.evaluate(() => sessionStorage.getItem("hookrelay.token")) === null, "the token outlived sign-out");
  check(await page.inputValue("#signin-project") === PROJECT, "the project was forgotten");
  await page.locator("#signin-token").fill(VIEWER);
  await page.locator("#signin-token").press("Enter");
  await page.locator("#overview-title").waitFor({ state: "visible" });
  await page.locator(`#attention li[data-webhook="${HANGING}"]`).waitFor();
  await gotoPage("webhooks");
  await page.locator('tr[data-webhook="orders"]').waitFor();
  await gotoPage("deliveries");
  await page.locator("#delivery-rows tr[data-delivery]").first().waitFor();

  step("the viewer is offered nothing that changes something, and told its role");
  /// Checks the page shown now: no such control is visible or reached by the keyboard.
  const nothingToChange = async (where) => {
    check(await page.locator("#who-role-name").innerText() === "viewer", `${where}: the viewer's role is not shown`);
    const { visible, reached } = await writeControlsOffered();
    check(visible.length === 0, `${where}: the viewer is shown ${visible.join(", ")}`);
    check(reached.length === 0, `${where}: the keyboard reaches ${reached.join(", ")}`);
  };
  const firstDelivery = page.locator("#delivery-rows tr[data-delivery]").first();
  await firstDelivery.getByRole("button", { name: /^Details of delivery / }).click();
  await page.locator("#delivery-rows tr.detail:not([hidden])").first().waitFor();
  await nothingToChange("deliveries");
  await gotoPage("webhooks");
  await page.locator('tr[data-webhook="orders"]').waitFor();
  await nothingToChange("webhooks");
  await gotoPage("overview");
  await page.locator(`#attention li[data-webhook="${HANGING}"]`).waitFor();
  await nothingToChange("overview");
  await controlsLabelled();
  await gotoPage("deliveries");

  step("a reload keeps the sign-in of this tab");
  await page.reload();
  await page.locator("#deliveries-title").waitFor({ state: "visible" });
  await page.locator("#delivery-rows tr[data-delivery]").first().waitFor();
  await page.locator("#who-role-name", { hasText: "viewer" }).waitFor();
  await nothingToChange("deliveries after a reload");
} catch (e) {
  problems.push(`step "${stepName}" failed: ${e.message.split("\n")[0]}`);
  // Kept out of docs/screenshots: only the pages of a passing run go there.
  const where = join(tmpdir(), `hookrelay-console-failure-${process.pid}.png`);
  try {
    await page.screenshot({ path: where });
    problems.push(`the page at the failure: ${where}`);
  } catch (_) { /* the page may be gone */ }
} finally {
  await browser.close();
}

if (problems.length) {
  console.error("FAILED:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log(`all steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
