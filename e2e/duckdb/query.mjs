// Runs one SQL query with DuckDB and prints its rows as a JSON array of
// objects (64-bit integers as strings, dates as YYYY-MM-DD).
// Usage: node query.mjs '<sql>'
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs <sql>');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const reader = await conn.runAndReadAll(sql);
process.stdout.write(JSON.stringify(reader.getRowObjectsJson()) + '\n');
conn.closeSync();
instance.closeSync();
