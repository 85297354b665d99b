// Summarises a V8 CPU profile (a .cpuprofile written by `node --cpu-prof`):
// where the self time went, by package or source file, and the functions
// that took most of it. The benchmark profiles each case with `--profile`;
// this turns a profile into the table BENCHMARKS.md quotes.
//
//   npx tsx bench/profile.ts FILE.cpuprofile [--top 25] [--from SECONDS] [--to SECONDS]
//
// `--from`/`--to` keep only the samples in that window of the profile (the
// load, without the start-up and the seeding).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  /** Microseconds of samples counted. */
  total: number
  byGroup: [string, number][]
  byFunction: [string, number][]
}

/** Which package, project folder or runtime part a function belongs to. */
function groupOf(url: string, functionName: string): string {
  if (url === '') {
    if (['(garbage collector)', '(idle)', '(program)'].includes(functionName)) return functionName
    return '(native)'
  }
  const modules = url.lastIndexOf('node_modules/')
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url)
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`
  const src = url.indexOf('/src/')
  if (src >= 0) return `src/${url.slice(src + 5).split('/').slice(0, -1).join('/') || '.'}`
  return path.basename(url)
}

export function summarize(profile: Profile, window: { from?: number; to?: number } = {}): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const groups = new Map<string, number>()
  const functions = new Map<string, number>()
  let at = 0
  let total = 0
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0
    at += delta
    if (window.from !== undefined && at < window.from * 1e6) return
    if (window.to !== undefined && at > window.to * 1e6) return
    const node = byId.get(id)
    if (!node) return
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') return
    total += delta
    const group = groupOf(url, functionName)
    groups.set(group, (groups.get(group) ?? 0) + delta)
    const name = `${functionName || '(anonymous)'} ${group}${url ? `:${lineNumber + 1}` : ''}`
    functions.set(name, (functions.get(name) ?? 0) + delta)
  })
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  return { total, byGroup: sorted(groups), byFunction: sorted(functions) }
}

export function render(summary: ProfileSummary, top = 25): string {
  const share = (value: number) => `${((100 * value) / Math.max(summary.total, 1)).toFixed(1)} %`
  return [
    `busy: ${(summary.total / 1e6).toFixed(1)} s of samples (idle excluded)`,
    '',
    '| where | self time |',
    '|---|---:|',
    ...summary.byGroup.slice(0, top).map(([name, value]) => `| ${name} | ${share(value)} |`),
    '',
    '| function | self time |',
    '|---|---:|',
    ...summary.byFunction.slice(0, top).map(([name, value]) => `| \`${name}\` | ${share(value)} |`)
  ].join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, from: { type: 'string' }, to: { type: 'string' } }
  })
  const file = positionals[0]
  if (!file) {
    process.stderr.write('Usage: npx tsx bench/profile.ts FILE.cpuprofile [--top N] [--from S] [--to S]\n')
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const window = { from: values.from ? Number(values.from) : undefined, to: values.to ? Number(values.to) : undefined }
  process.stdout.write(render(summarize(profile, window), Number(values.top)) + '\n')
}
