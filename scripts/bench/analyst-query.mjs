#!/usr/bin/env node
// analyst-query.mjs ENGINE FORM QUERY GLOB [SCENARIO]
//
// One analyst's query on the hydros table, for `go run ./cmd/shardbench`
// (its "analyst" section): one query per process, timed inside the
// process (node start-up and loading the engine are not counted), so that
// every measurement starts as an analyst's fresh session does.
//
//   ENGINE    duckdb (@duckdb/node-api) or polars (nodejs-polars)
//   FORM      hive: GLOB is OUT/simulation/hydros/**/*.parquet, read with
//             hive partitioning (scenario_id from the directory names);
//             compacted: GLOB is OUT/compacted/hydros/*.parquet, whose
//             files carry scenario_id as a column
//   QUERY     agg: over every scenario, per stage_id: the sum of
//             generation_mwh, the mean of storage_final_hm3 and the row
//             count, ordered by stage_id
//             filter: every column of one scenario (WHERE scenario_id =
//             SCENARIO), materialized in the engine's memory
//
// Prints one JSON line on stdout:
//   {"ok": true, "engine": "duckdb", "version": "v1.5.x", "ms": <the query>,
//    "result": ...}
// where result is, for agg, [[stage_id, sum, mean, count], ...] and, for
// filter, {"rows": N, "columns": C, "sum_generation_mwh": x,
// "sum_stage_id": n, "sum_hydro_id": n, "scenario_ids": [distinct ids]}
// (computed after the timing), so that the caller can check that both
// forms give the same answer. Exits 1 on any error (message on stderr),
// 2 on bad usage. Needs the engines resolvable from this script's
// directory (the Go side symlinks node_modules next to a copy of it).
import { performance } from 'node:perf_hooks'

const sqlString = (s) => "'" + String(s).replaceAll("'", "''") + "'"

function usage() {
  process.stderr.write('usage: node analyst-query.mjs duckdb|polars hive|compacted agg|filter GLOB [SCENARIO]\n')
  process.exit(2)
}

async function duckdb(form, query, glob, k) {
  const { DuckDBInstance, version } = await import('@duckdb/node-api')
  const instance = await DuckDBInstance.create(':memory:')
  const conn = await instance.connect()
  try {
    const src = `read_parquet(${sqlString(glob)}, hive_partitioning = ${form === 'hive'})`
    const sql = query === 'agg'
      ? `SELECT stage_id, sum(generation_mwh)::DOUBLE, avg(storage_final_hm3)::DOUBLE, count(*)::DOUBLE FROM ${src} GROUP BY stage_id ORDER BY stage_id`
      : `SELECT * FROM ${src} WHERE scenario_id = ${k}`
    const t0 = performance.now()
    const reader = await conn.runAndReadAll(sql)
    const ms = performance.now() - t0
    let result
    if (query === 'agg') {
      result = reader.getRowsJson().map((r) => r.map(Number))
    } else {
      const cols = reader.getColumnsObjectJson()
      result = filterSummary(reader.currentRowCount, reader.columnCount, (name) => cols[name].map(Number))
    }
    return { version: version(), ms, result }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

async function polars(form, query, glob, k) {
  const pl = (await import('nodejs-polars')).default
  const t0 = performance.now()
  let lf = pl.scanParquet(glob, { hivePartitioning: form === 'hive' })
  if (query === 'agg') {
    lf = lf.groupBy('stage_id').agg(
      pl.col('generation_mwh').sum().alias('s'),
      pl.col('storage_final_hm3').mean().alias('a'),
      pl.len().alias('n'),
    ).sort('stage_id')
  } else {
    // The literal in the column's own type (Int64 from the hive path,
    // Int32 in the compacted files), as Python's `pl.col("scenario_id") ==
    // k` gives: a JS number is a Float64 literal, which makes Polars cast
    // the column to Float64 and so read every row group (no statistics).
    lf = lf.filter(pl.col('scenario_id').eq(pl.lit(k).cast(form === 'hive' ? pl.Int64 : pl.Int32)))
  }
  const df = await lf.collect()
  const ms = performance.now() - t0
  let result
  if (query === 'agg') {
    result = df.rows().map((r) => r.map(Number))
  } else {
    result = filterSummary(df.height, df.width, (name) => Array.from(df.getColumn(name).toArray(), Number))
  }
  return { version: String(pl.version), ms, result }
}

// filterSummary is what the caller compares between the two forms.
function filterSummary(rows, columns, column) {
  const sum = (xs) => xs.reduce((a, b) => a + b, 0)
  return {
    rows,
    columns,
    sum_generation_mwh: sum(column('generation_mwh')),
    sum_stage_id: sum(column('stage_id')),
    sum_hydro_id: sum(column('hydro_id')),
    scenario_ids: [...new Set(column('scenario_id'))].sort((a, b) => a - b),
  }
}

async function main() {
  const [engine, form, query, glob, scen] = process.argv.slice(2)
  if (!['duckdb', 'polars'].includes(engine) || !['hive', 'compacted'].includes(form) ||
      !['agg', 'filter'].includes(query) || !glob) usage()
  const k = Number(scen)
  if (query === 'filter' && !(Number.isInteger(k) && k >= 0)) usage()
  const r = await (engine === 'duckdb' ? duckdb : polars)(form, query, glob, k)
  process.stdout.write(JSON.stringify({ ok: true, engine, ...r }) + '\n')
}

main().catch((err) => {
  process.stderr.write(`analyst-query: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
