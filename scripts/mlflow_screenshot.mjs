// Screenshots of MLflow's UI with headless Chromium (Debian's chromium package) through
// playwright-core (npm install playwright-core; no browser download needed).
//
//   node scripts/mlflow_screenshot.mjs URL OUT.png [TEXT_TO_WAIT_FOR] [CLICK_TEXT]
//
// Waits for TEXT_TO_WAIT_FOR to appear (MLflow renders client-side), optionally clicks the first
// element with CLICK_TEXT (a trace row, to open its span tree) and waits for the page to settle.
import { chromium } from "playwright-core";

const [url, out, waitText, clickText] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node mlflow_screenshot.mjs URL OUT.png [TEXT_TO_WAIT_FOR] [CLICK_TEXT]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  await page.goto(url, { waitUntil: "networkidle", timeout: 120000 });
  if (waitText) {
    try {
      await page.getByText(waitText).first().waitFor({ timeout: 60000 });
    } catch (e) {
      await page.screenshot({ path: out });  // what was there instead, to see why
      throw e;
    }
  }
  // MLflow 3.17's first-visit hints and its Assistant side panel cover the traces: dismiss them.
  for (const name of ["Got it"]) {
    await page.getByRole("button", { name }).first().click({ timeout: 3000 }).catch(() => {});
  }
  await page.getByRole("button", { name: /close/i }).last().click({ timeout: 3000 }).catch(() => {});
  if (clickText) {
    await page.getByText(clickText).first().click();
    await page.waitForLoadState("networkidle");
  }
  await page.waitForTimeout(3000);
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}
