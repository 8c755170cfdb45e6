// The parquet-go contestant of cmd/shardbench, a module of its own so that
// the hydroshard module (which solvers import) does not require parquet-go.
// Every module here is at the version the root module's build list has
// (the indirect ones were raised to it with go get), so the contestant runs
// the same code as when it was part of the root module; shardbench refuses
// to run when github.com/klauspost/compress (the writer's zstd) differs.
module github.com/hydroshard/hydroshard/cmd/shardbench/parquetgo

go 1.26

require (
	github.com/klauspost/compress v1.20.4
	github.com/parquet-go/parquet-go v0.32.0
)

require (
	github.com/andybalholm/brotli v1.2.3 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/parquet-go/bitpack v1.0.0 // indirect
	github.com/parquet-go/jsonlite v1.0.0 // indirect
	github.com/pierrec/lz4/v4 v4.1.29 // indirect
	github.com/twpayne/go-geom v1.6.1 // indirect
	golang.org/x/sys v0.47.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
