// One SQL statement on the test server's maintenance database (creating and
// dropping databases cannot run inside a pool's transaction).
import pg from 'pg'

export async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
