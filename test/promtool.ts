// Prometheus's own checker, `promtool` (Debian's `prometheus` package), for
// the tests of the metrics and of the README's alert rules. Without it those
// checks are skipped with a message, except in CI (CI=true), where .ci/run
// installs it and its absence is a failure.
import { spawnSync } from 'node:child_process'

function findPromtool(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

export const PROMTOOL = findPromtool()

if (!PROMTOOL) {
  if (process.env.CI) throw new Error('promtool is not installed; .ci/run installs it (apt-get install -y prometheus)')
  console.warn('\n  SKIPPED: the promtool checks need promtool (apt-get install -y prometheus)\n')
}

export interface PromtoolResult {
  status: number | null
  /** What promtool printed, both streams. */
  output: string
}

/** Runs promtool with `args`, feeding `input` on standard input. */
export function promtool(args: string[], input = ''): PromtoolResult {
  if (!PROMTOOL) throw new Error('promtool is not installed')
  const result = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 30_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() }
}
