// Headless Chromium for the tests that need a real browser (Debian's package,
// installed by .ci/run; driven by playwright-core). Without it such a test
// skips, saying so, except in CI, where a skipped browser test would hide a
// broken page: there it fails.
import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// Without the networking flags Chromium keeps dialling hosts it cannot reach.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

const hasBrowser = existsSync(CHROMIUM)
const inCi = Boolean(process.env.CI)

/** Whether a browser test runs here: with Chromium, or in CI (where its absence fails the test). */
export function browserTestsRun(file: string): boolean {
  if (!hasBrowser && !inCi) {
    console.warn(
      `\n  SKIPPED ${file}: no Chromium at ${CHROMIUM}. Install it (apt-get install -y chromium) or set CHROMIUM_PATH.\n`
    )
  }
  return hasBrowser || inCi
}

export async function launchChromium(): Promise<Browser> {
  if (!hasBrowser) throw new Error(`CI needs Chromium at ${CHROMIUM} for the browser tests (.ci/run installs it)`)
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true })
}

