#!/usr/bin/env node
// hyparquet-dump.mjs FILE...
//
// Decodes each Parquet file with hyparquet (pure JavaScript, independent of
// the Go writer and of DuckDB; zstd through hyparquet-compressors) and
// prints one JSON document on stdout:
//
//   {"<FILE>": {"num_rows": n,
//               "columns": ["stage_id", ...],
//               "schema": [{"name", "type", "logical", "repetition"}, ...],
//               "rows": [[...], ...]}}
//
// Values are rendered so that nothing is lost on the way to JSON:
//   - null (and hyparquet's undefined) -> null
//   - booleans -> true/false
//   - finite numbers -> JSON numbers, printed with the shortest repr that
//     round-trips, so float64 values survive exactly
//   - -0 -> the string "-0" (JSON.stringify would print 0)
//   - NaN, Infinity, -Infinity -> the strings "NaN", "Infinity", "-Infinity"
//   - BigInt (INT64) -> a JSON number when it is a safe integer, otherwise
//     its decimal string
//   - strings -> strings; byte arrays -> arrays of byte values
//
// Needs hyparquet and hyparquet-compressors resolvable from this script's
// directory. Exits 1 on any error (message on stderr), 2 on bad usage.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'

function usage() {
  process.stderr.write('usage: node hyparquet-dump.mjs FILE...\n')
  process.exit(2)
}

function render(v) {
  if (v === null || v === undefined) return null
  switch (typeof v) {
    case 'boolean':
    case 'string':
      return v
    case 'number':
      if (Number.isNaN(v)) return 'NaN'
      if (v === Infinity) return 'Infinity'
      if (v === -Infinity) return '-Infinity'
      if (Object.is(v, -0)) return '-0'
      return v
    case 'bigint':
      if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v)
      return v.toString()
  }
  if (v instanceof Uint8Array) return Array.from(v)
  if (Array.isArray(v)) return v.map(render)
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) o[k] = render(x)
    return o
  }
  return String(v)
}

function logicalName(el) {
  if (el.logical_type) {
    const lt = el.logical_type
    if (lt.type === 'INTEGER') return `INT(${lt.bitWidth},${lt.isSigned})`
    return String(lt.type)
  }
  return el.converted_type ?? null
}

async function dump(path) {
  const file = await asyncBufferFromFile(path)
  const metadata = await parquetMetadataAsync(file)
  const fields = parquetSchema(metadata).children
  const columns = fields.map((c) => c.element.name)
  const schema = fields.map((c) => ({
    name: c.element.name,
    type: c.element.type ?? null,
    logical: logicalName(c.element),
    repetition: c.element.repetition_type ?? null,
  }))
  const objects = await parquetReadObjects({ file, metadata, compressors })
  const rows = objects.map((o) => columns.map((name) => render(o[name])))
  return { num_rows: Number(metadata.num_rows), columns, schema, rows }
}

async function main() {
  const files = process.argv.slice(2)
  if (files.length === 0 || files.some((f) => f.startsWith('-'))) usage()
  const out = {}
  for (const f of files) {
    try {
      out[f] = await dump(f)
    } catch (err) {
      throw new Error(`${f}: ${err && err.message ? err.message : err}`)
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  process.stderr.write(`hyparquet-dump: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
