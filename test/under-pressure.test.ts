// Load shedding: past a threshold, requests get a quick 503 problem with
// Retry-After; /health keeps answering, and the service serves again once
// the pressure is gone.
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { buildApp } from './helper.js'

/** Keeps the event loop busy, as a CPU-bound request storm would. */
function blockEventLoop(ms: number) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // spin
  }
}

describe('under pressure', () => {
  it('over the heap threshold, requests get 503 with Retry-After and /health stays 200', async () => {
    // 1 byte: the first sample puts the process over the threshold for good.
    const app = await buildApp({ PRESSURE_MAX_HEAP_BYTES: 1, PRESSURE_SAMPLE_INTERVAL: 50, PRESSURE_RETRY_AFTER: 7 })
    try {
      await sleep(200)
      for (const url of ['/posts', '/ready', '/']) {
        const response = await app.inject({ method: 'GET', url })
        expect(response.statusCode, url).toBe(503)
        expect(response.headers['retry-after'], url).toBe('7')
        expect(response.headers['content-type'], url).toContain('application/problem+json')
        expect(response.json(), url).toEqual({
          type: 'about:blank',
          title: 'Service Unavailable',
          status: 503,
          detail: 'The service is overloaded. Try again shortly.'
        })
      }
      const health = await app.inject({ method: 'GET', url: '/health' })
      expect(health.statusCode).toBe(200)
      expect(health.json()).toEqual({ status: 'ok' })
    } finally {
      await app.close()
    }
  })

  it('a blocked event loop sheds requests, and the service recovers when it runs freely again', async () => {
    const app = await buildApp({ PRESSURE_MAX_EVENT_LOOP_DELAY: 100, PRESSURE_SAMPLE_INTERVAL: 1000 })
    try {
      // Building the app (schema compilation) can itself lag the loop on a busy machine.
      const served = async () => (await app.inject({ method: 'GET', url: '/' })).statusCode
      await expect.poll(served, { timeout: 10_000, interval: 100 }).toBe(200)

      // A CPU-bound storm: the loop blocked 300 ms at a time, again and again, so that every
      // sample (each a mean of the delays since the last one) sees it, however the blocks and
      // the samples fall; ask between the blocks until a request is shed.
      let shed: Awaited<ReturnType<typeof app.inject>> | undefined
      const storm = async () => {
        blockEventLoop(300)
        return (shed = await app.inject({ method: 'GET', url: '/' })).statusCode
      }
      await expect.poll(storm, { timeout: 15_000, interval: 0 }).toBe(503)
      expect(shed?.headers['retry-after']).toBe('10')

      // A free-running loop for a few samples: the delay measure falls again.
      await expect.poll(served, { timeout: 10_000, interval: 100 }).toBe(200)
    } finally {
      await app.close()
    }
  })
})
