#!/usr/bin/env node
// duckdb-copy.mjs
//
// The DuckDB contestant of `go run ./cmd/shardbench`. It is a long-lived
// process so that node start-up, loading DuckDB and loading the data are
// paid once, outside the timings, and so that the Go side can interleave
// DuckDB's runs with its other contestants round by round.
//
// Protocol: one JSON object per line on stdin, one JSON reply per line on
// stdout ({"ok": false, "error": "..."} on failure; the process carries on).
//
//   {"cmd": "load", "tables": [[path, ...], ...]}
//     Creates in-memory tables t0, t1, ... (table k from the Parquet files
//     tables[k]) and replies {"ok": true, "duckdb_version": "v1.5.x",
//     "rows": [n0, n1, ...]}.
//   {"cmd": "copy", "threads": N, "paths": [p0, p1, ...]}
//     SET threads=N (only when it differs from the current setting: the
//     COPY after a change of thread count measured 2-4x slower, a cost a
//     long-lived DuckDB does not pay; the Go side runs one process per
//     thread count), then COPY tk TO pk (FORMAT parquet, COMPRESSION zstd,
//     COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 100000) for every k, one file per
//     table as the writer writes one file per scenario. Replies
//     {"ok": true, "ms": <wall time of the COPYs only>, "bytes": <sum of the
//     file sizes>}. DuckDB does not fsync the files; the Go contestants do.
//
// EOF on stdin ends the process (exit 0). Needs @duckdb/node-api resolvable
// from this script's directory (the Go side symlinks node_modules next to a
// copy of it). Exits 1 when DuckDB cannot start.
import { createInterface } from 'node:readline'
import { statSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { DuckDBInstance, version } from '@duckdb/node-api'

const sqlString = (s) => "'" + String(s).replaceAll("'", "''") + "'"

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function load(conn, tables) {
  if (!Array.isArray(tables) || tables.length === 0) throw new Error('load: "tables" must be a non-empty array of path lists')
  const rows = []
  for (let k = 0; k < tables.length; k++) {
    const files = tables[k].map(sqlString).join(', ')
    await conn.run(`CREATE OR REPLACE TABLE t${k} AS SELECT * FROM read_parquet([${files}])`)
    const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER FROM t${k}`)
    rows.push(r.getRows()[0][0])
  }
  return { ok: true, duckdb_version: version(), rows }
}

let currentThreads = 0

async function copy(conn, threads, paths) {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`copy: threads ${threads}, want an integer >= 1`)
  if (!Array.isArray(paths) || paths.length === 0) throw new Error('copy: "paths" must be a non-empty array')
  if (threads !== currentThreads) {
    await conn.run(`SET threads = ${threads}`)
    currentThreads = threads
  }
  const t0 = performance.now()
  for (let k = 0; k < paths.length; k++) {
    await conn.run(`COPY t${k} TO ${sqlString(paths[k])} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 100000)`)
  }
  const ms = performance.now() - t0
  let bytes = 0
  for (const p of paths) bytes += statSync(p).size
  return { ok: true, ms, bytes }
}

async function main() {
  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue
      try {
        const req = JSON.parse(line)
        if (req.cmd === 'load') reply(await load(conn, req.tables))
        else if (req.cmd === 'copy') reply(await copy(conn, req.threads, req.paths))
        else throw new Error(`unknown cmd ${JSON.stringify(req.cmd)}`)
      } catch (err) {
        reply({ ok: false, error: String(err && err.message ? err.message : err) })
      }
    }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

main().catch((err) => {
  process.stderr.write(`duckdb-copy: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
