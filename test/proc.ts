// Looking at processes from the outside, through Linux's /proc: for tests of
// what the service starts (its hashing process) and of the database's processes.
import { readdirSync, readFileSync } from 'node:fs'

/** The fields of /proc/<pid>/stat after the command name (field 3 is the first). */
export function statFields(path: string): string[] | undefined {
  try {
    const stat = readFileSync(path, 'utf8')
    // The command name, in parentheses, may hold spaces: read after its ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The processes `pid` started that still run. */
export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((child) => Number(statFields(`/proc/${child}/stat`)?.[1]) === pid)
}
