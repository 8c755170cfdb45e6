package shard

import (
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// EncOptions exposes the speed/size settings to the external tests.
type EncOptions = encOptions

// DefaultEncOptions returns the settings every file uses.
func DefaultEncOptions() EncOptions { return defaultEncOptions }

// With returns o changed by the named knobs (for measurements).
func (o EncOptions) With(pageSize int64, stats bool, split func(Column) bool, dict func(Column) bool) EncOptions {
	o.pageSize, o.stats, o.split = pageSize, stats, split
	if dict != nil {
		o.dict = dict
	}
	return o
}

// NewEncoderWith returns an Encoder that writes with o instead of the defaults.
func NewEncoderWith(o EncOptions) *Encoder { return &Encoder{props: &propsCache{o: o}} }

// WithSparse returns o with the mostly-zero rule on or off.
func (o EncOptions) WithSparse(on bool) EncOptions { o.sparse = on; return o }

// NewCodec returns a zstd codec with opts (nil: the project's) for UseCodec.
func NewCodec(opts []zstd.EOption) compress.Codec {
	if opts == nil {
		opts = codecOptions
	}
	return newZstdCodec(mustCodec().(*zstdCodec).Codec, opts...)
}

// UseCodec registers c for every Parquet write. Not safe while files are
// being written.
func UseCodec(c compress.Codec) { compress.RegisterCodec(compress.Codecs.Zstd, c) }

func mustCodec() compress.Codec {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic(err)
	}
	return c
}

// WithBatch returns o with another write batch size.
func (o EncOptions) WithBatch(n int64) EncOptions { o.batch = n; return o }

// ReadBack and ColumnOf are the encoder tests' Parquet readers, for the
// external tests (derive_expect_test.go).
var (
	ReadBack = readBack
	ColumnOf = column
)
