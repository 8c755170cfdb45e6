#!/usr/bin/env node
// duckdb-query.mjs SQL...
//
// Runs each SQL argument, in order, on one in-memory DuckDB connection (so a
// CREATE VIEW of one argument is seen by the next) and prints one JSON
// document on stdout:
//
//   {"duckdb_version": "v1.5.x",
//    "results": [{"columns": [{"name": ..., "type": ...}, ...],
//                 "rows": [[...], ...]}, ...]}
//
// one result per argument. Types are DuckDB's (INTEGER, BIGINT, DOUBLE,
// ...). Values are @duckdb/node-api's JSON rendering: NULL -> null,
// INTEGER/DOUBLE -> numbers (a float64 survives exactly), BIGINT and wider
// -> decimal strings (they may exceed 2^53), BOOLEAN -> true/false,
// VARCHAR -> strings, NaN/Infinity -> strings.
//
// Needs @duckdb/node-api resolvable from this script's directory (a Go test
// symlinks node_modules next to a copy of it). Exits 1 on any error, with
// the message (and the failing SQL) on stderr, and 2 on bad usage.
import { DuckDBInstance, version } from '@duckdb/node-api'

function usage() {
  process.stderr.write('usage: node duckdb-query.mjs SQL...\n')
  process.exit(2)
}

async function main() {
  const sqls = process.argv.slice(2)
  if (sqls.length === 0) usage()
  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  const out = { duckdb_version: version(), results: [] }
  try {
    for (const sql of sqls) {
      let reader
      try {
        reader = await conn.runAndReadAll(sql)
      } catch (err) {
        throw new Error(`${err && err.message ? err.message : err}\nin SQL: ${sql}`)
      }
      const names = reader.columnNames()
      const types = reader.columnTypes()
      out.results.push({
        columns: names.map((name, i) => ({ name, type: String(types[i]) })),
        rows: reader.getRowsJson(),
      })
    }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  process.stderr.write(`duckdb-query: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
