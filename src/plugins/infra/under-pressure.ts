// Load shedding: when the event loop lags, or the heap or resident memory
// grows past its threshold, new requests get a quick 503 problem with
// Retry-After instead of queueing behind work the process cannot finish.
// `/ready` answers 503 too, so a load balancer stops sending traffic here;
// `/health` is exempt (route config `pressureExempt`): an orchestrator that
// restarted every busy instance would turn a load peak into an outage.
import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import { serviceUnavailable } from '../../lib/errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Answer this route even while the process is under pressure. */
    pressureExempt?: boolean
  }
}

export default fp(
  async function underPressurePlugin(fastify) {
    const { config } = fastify
    const shed = fastify.metrics.counter({
      name: 'blog_api_shed_requests_total',
      help: 'Requests answered 503 because the process was overloaded, by the measure over its threshold.',
      labelNames: ['reason']
    })
    await fastify.register(underPressure, {
      // 0 switches a check off.
      maxEventLoopDelay: config.PRESSURE_MAX_EVENT_LOOP_DELAY,
      maxHeapUsedBytes: config.PRESSURE_MAX_HEAP_BYTES,
      maxRssBytes: config.PRESSURE_MAX_RSS_BYTES,
      sampleInterval: config.PRESSURE_SAMPLE_INTERVAL,
      pressureHandler: (request, _reply, type) => {
        if (request.routeOptions.config.pressureExempt === true) return undefined
        request.log.warn({ pressure: type }, 'shedding load')
        shed.inc({ reason: type })
        return Promise.reject(serviceUnavailable('The service is overloaded. Try again shortly.', config.PRESSURE_RETRY_AFTER))
      }
    })
  },
  { name: 'under-pressure', dependencies: ['config', 'errors', 'metrics'] }
)
