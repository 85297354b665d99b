// PostgreSQL LISTEN/NOTIFY on one connection per instance: how every instance
// hears, within milliseconds, what another one changed (revoked sessions,
// edited posts). A NOTIFY is delivered when its transaction commits, and only
// to listeners connected at that moment. So the listener tells its
// subscribers when it loses its connection (what they hold may go stale from
// then on) and when it has listened again (they reload, since whatever was
// sent in between is lost); it reconnects by itself, backing off.
import fp from 'fastify-plugin'
import pg from 'pg'

export interface Subscriber {
  /** A notification on the channel, with its payload. */
  message(payload: string): void
  /**
   * Listening (again): anything notified while not listening was missed. Runs
   * after LISTEN, so nothing sent from here on is missed either.
   */
  resync(): Promise<void> | void
  /** The connection is lost: notifications may be missed until `resync`. */
  lost?(): void
}

export interface Notifications {
  /** Listens on `channel` (a plain identifier); call before the app is ready. */
  subscribe(channel: string, subscriber: Subscriber): void
  /** Whether the listener is connected, so subscribers hear every change. */
  readonly listening: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    notifications: Notifications
  }
}

const CHANNEL_NAME = /^[a-z_][a-z0-9_]*$/
const FIRST_RECONNECT_DELAY_MS = 250
const MAX_RECONNECT_DELAY_MS = 10_000

export default fp(
  async function notificationsPlugin(fastify) {
    const { config, log } = fastify
    const subscribers = new Map<string, Subscriber[]>()

    let client: pg.Client | undefined
    let listening = false
    let closing = false
    let reconnectDelay = FIRST_RECONNECT_DELAY_MS
    let reconnectTimer: NodeJS.Timeout | undefined

    fastify.metrics.gauge({
      name: 'blog_api_notification_listener_up',
      help: '1 while the LISTEN connection (revocations, post cache) is connected and listening, else 0.',
      collect() {
        this.set(listening ? 1 : 0)
      }
    })
    const connectionsLost = fastify.metrics.counter({
      name: 'blog_api_notification_listener_disconnects_total',
      help: 'Times the LISTEN connection was lost (it reconnects by itself).'
    })

    function onNotification(message: pg.Notification) {
      for (const subscriber of subscribers.get(message.channel) ?? []) subscriber.message(message.payload ?? '')
    }

    function connectionLost() {
      if (listening) {
        connectionsLost.inc()
        for (const list of subscribers.values()) for (const subscriber of list) subscriber.lost?.()
      }
      listening = false
      scheduleReconnect()
    }

    function scheduleReconnect() {
      if (closing || reconnectTimer) return
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined
        connect().catch(() => scheduleReconnect())
      }, reconnectDelay)
      reconnectTimer.unref()
      reconnectDelay = Math.min(reconnectDelay * 2, MAX_RECONNECT_DELAY_MS)
    }

    async function connect() {
      const next = new pg.Client({ connectionString: config.DATABASE_URL, connectionTimeoutMillis: 3000 })
      next.on('notification', onNotification)
      next.on('error', (error) => {
        log.warn({ err: error }, 'database notification listener lost its connection')
        void next.end().catch(() => undefined)
        if (client === next) connectionLost()
      })
      next.on('end', () => {
        if (client === next) connectionLost()
      })
      try {
        await next.connect()
        for (const channel of subscribers.keys()) await next.query(`LISTEN ${channel}`)
        client = next
        // Listen first, then reload: nothing changed in between is missed.
        for (const list of subscribers.values()) for (const subscriber of list) await subscriber.resync()
      } catch (error) {
        if (client === next) client = undefined
        await next.end().catch(() => undefined)
        throw error
      }
      listening = true
      reconnectDelay = FIRST_RECONNECT_DELAY_MS
    }

    fastify.decorate('notifications', {
      subscribe(channel, subscriber) {
        if (!CHANNEL_NAME.test(channel)) throw new Error(`not a channel name: ${channel}`)
        if (client) throw new Error('subscribe before the app is ready')
        subscribers.set(channel, [...(subscribers.get(channel) ?? []), subscriber])
      },
      get listening() {
        return listening
      }
    } satisfies Notifications)

    fastify.addHook('onReady', async () => {
      if (subscribers.size === 0) return
      try {
        await connect()
      } catch (error) {
        log.warn({ err: error }, 'database notification listener could not connect; retrying')
        scheduleReconnect()
      }
    })
    fastify.addHook('onClose', async () => {
      closing = true
      if (reconnectTimer) clearTimeout(reconnectTimer)
      const current = client
      client = undefined
      listening = false
      await current?.end().catch(() => undefined)
    })
  },
  { name: 'notifications', dependencies: ['config', 'metrics'] }
)
