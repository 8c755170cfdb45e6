#!/usr/bin/env node
// duckdb-check.mjs OUT
//
// Reads every simulation table under OUT/simulation with DuckDB, the way an
// analyst would (hive partitioning over the scenario_id=N directories), and
// prints one JSON document on stdout:
//
//   {"duckdb_version": "v1.5.x",
//    "tables": {"<entity>": {"files": n,
//                            "columns": [{"name": ..., "type": ...}, ...],
//                            "rows_per_scenario": {"0": n, ...}}}}
//
// An entity directory is any directory under OUT/simulation that directly
// holds scenario_id=* partitions, so nested tables such as
// violations/generic are found too. The types are DuckDB's (DESCRIBE); the
// scenario_id keys are rendered as DuckDB returns them (a padded, VARCHAR
// partition keeps its zeros: "0003").
//
// Needs @duckdb/node-api resolvable from this script's directory (the Go
// test symlinks node_modules next to a copy of it). Exits 1 on any error,
// with the message on stderr, and 2 on bad usage.
import { readdirSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { DuckDBInstance, version } from '@duckdb/node-api'

function usage() {
  process.stderr.write('usage: node duckdb-check.mjs OUT\n')
  process.exit(2)
}

// entityDirs returns the directories under root that directly contain
// scenario_id=* subdirectories, as paths relative to root with '/'.
function entityDirs(root) {
  const out = []
  const walk = (dir) => {
    const entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())
    if (entries.some((e) => e.name.startsWith('scenario_id='))) {
      out.push(relative(root, dir).split(sep).join('/'))
      return
    }
    for (const e of entries) walk(join(dir, e.name))
  }
  walk(root)
  return out.sort()
}

function countFiles(dir) {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFiles(join(dir, e.name))
    else if (e.name.endsWith('.parquet')) n++
  }
  return n
}

const sqlString = (s) => "'" + s.replaceAll("'", "''") + "'"

async function main() {
  const args = process.argv.slice(2)
  if (args.length !== 1 || args[0].startsWith('-')) usage()
  const out = args[0]
  const sim = join(out, 'simulation')

  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  const result = { duckdb_version: version(), tables: {} }
  try {
    for (const entity of entityDirs(sim)) {
      const dir = join(sim, ...entity.split('/'))
      const src = `read_parquet(${sqlString(join(dir, '**', '*.parquet'))}, hive_partitioning=true)`
      const desc = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)
      const columns = (await desc.getRowObjectsJson()).map((r) => ({
        name: String(r.column_name),
        type: String(r.column_type),
      }))
      const counts = await conn.runAndReadAll(
        `SELECT CAST(scenario_id AS VARCHAR) AS scenario, count(*) AS n FROM ${src} GROUP BY scenario_id ORDER BY scenario_id`,
      )
      const rows = {}
      for (const r of await counts.getRowObjectsJson()) {
        // count(*) is BIGINT: getRowObjectsJson renders it as a string.
        rows[String(r.scenario)] = Number(r.n)
      }
      result.tables[entity] = { files: countFiles(dir), columns, rows_per_scenario: rows }
    }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => {
  process.stderr.write(`duckdb-check: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
