package shard_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/internal/synth"
	"github.com/hydroshard/hydroshard/shard"
)

type variant struct {
	name  string
	opts  shard.EncOptions
	codec compress.Codec
}

// TestExploreEncoding measures encoder variants against raw zstd-3 on the
// same bytes, interleaved (HYDROSHARD_EXPLORE=rounds to run).
func TestExploreEncoding(t *testing.T) {
	rounds := 0
	fmt.Sscan(os.Getenv("HYDROSHARD_EXPLORE"), &rounds)
	if rounds == 0 {
		t.Skip("HYDROSHARD_EXPLORE=N runs N rounds")
	}
	def := shard.DefaultEncOptions()
	defCodec := shard.NewCodec(nil)
	crc := shard.NewCodec([]zstd.EOption{zstd.WithZeroFrames(true), zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true)})
	noCRC := shard.NewCodec([]zstd.EOption{zstd.WithZeroFrames(true), zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderCRC(false)})
	better := shard.NewCodec([]zstd.EOption{zstd.WithZeroFrames(true), zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderCRC(false), zstd.WithEncoderLevel(zstd.SpeedBetterCompression)})
	allF := func(shard.Column) bool { return true }
	plainCols := map[string]bool{"spillage_m3s": true, "evaporation_m3s": true, "diverted_inflow_m3s": true, "diverted_outflow_m3s": true, "inflow_m3s": true, "storage_initial_hm3": true, "storage_final_hm3": true, "spillage_cost": true}
	mixF := func(c shard.Column) bool { return !plainCols[c.Name] }
	mixStatic := func(c shard.Column) bool { return !c.Plain }
	noDict := func(shard.Column) bool { return false }
	old := def.With(64<<10, true, nil, nil)
	all := map[string]variant{
		"old":         {"old", old, defCodec},
		"oldnocrc":    {"oldnocrc", old, noCRC},
		"new":         {"new", def, defCodec},
		"newcrc":      {"newcrc", def, crc},
		"new64":       {"new64", def.With(64<<10, true, mixStatic, nil), defCodec},
		"new128":      {"new128", def.With(128<<10, true, mixStatic, nil), defCodec},
		"allsplit":    {"allsplit", def.With(256<<10, true, allF, nil).WithSparse(false), defCodec},
		"static":      {"static", def.With(256<<10, true, mixF, nil).WithSparse(false), defCodec},
		"splitsparse": {"splitsparse", def.With(256<<10, true, allF, nil), defCodec},
		"plainrecur":  {"plainrecur", def.With(256<<10, true, mixStatic, nil), defCodec},
		"nosparse":    {"nosparse", def.With(256<<10, true, mixStatic, nil).WithSparse(false), defCodec},
		"split64":     {"split64", def.With(64<<10, true, allF, nil).WithSparse(false), defCodec},
		"nostats":     {"nostats", def.With(256<<10, false, mixStatic, nil), defCodec},
		"nodict":      {"nodict", def.With(256<<10, true, mixStatic, noDict), defCodec},
		"b8k":         {"b8k", def.WithBatch(8192), defCodec},
		"better":      {"better", def, better},
	}
	var vs []variant
	for _, n := range bytes.Fields([]byte(os.Getenv("HYDROSHARD_VARIANTS"))) {
		v, ok := all[string(n)]
		if !ok {
			t.Fatalf("no variant %s", n)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		vs = []variant{all["base"]}
	}
	c := synth.Production()
	var scs []*shard.Scenario
	for s := range 4 {
		sc, err := synth.Generate(c, 1, s)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	encs := make([]*shard.Encoder, len(vs))
	for i, v := range vs {
		encs[i] = shard.NewEncoderWith(v.opts)
	}
	renc := shard.NewEncoder()
	var cols [][][]byte
	for _, sc := range scs {
		rec, err := renc.Record(shard.TableRows{Table: shard.Hydros, Rows: sc.Hydros}, c)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, shard.ColumnBytes(rec))
		rec.Release()
	}
	raw, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(shard.ZstdLevel)), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	var dst []byte
	ratios := make([][]float64, len(vs))
	sizes := make([]int, len(vs))
	var mem bytes.Buffer
	defer shard.UseCodec(defCodec)
	const perRound = 8
	for r := 0; r < rounds; r++ {
		var tRaw time.Duration
		tv := make([]time.Duration, len(vs))
		for i := 0; i < perRound; i++ {
			k := i % len(scs)
			t0 := time.Now()
			for _, col := range cols[k] {
				for off := 0; off < len(col); off += 1 << 20 {
					dst = raw.EncodeAll(col[off:min(off+1<<20, len(col))], dst[:0])
				}
			}
			tRaw += time.Since(t0)
			for j, v := range vs {
				shard.UseCodec(v.codec)
				mem.Reset()
				t0 := time.Now()
				if _, err := encs[j].Encode(&mem, shard.TableRows{Table: shard.Hydros, Rows: scs[k].Hydros}, c); err != nil {
					t.Fatal(err)
				}
				tv[j] += time.Since(t0)
				if k == 0 {
					sizes[j] = mem.Len()
					if d := os.Getenv("HYDROSHARD_EXPLORE_OUT"); d != "" && r == 0 {
						os.WriteFile(d+"/"+v.name+".parquet", mem.Bytes(), 0o644)
					}
				}
			}
		}
		for j := range vs {
			ratios[j] = append(ratios[j], tRaw.Seconds()/tv[j].Seconds())
		}
	}
	for j, v := range vs {
		rs := slices.Clone(ratios[j])
		slices.Sort(rs)
		t.Logf("%-10s encode_in_memory/raw median %.3f (%.3f-%.3f)  bytes %d (%.4f of base-first)", v.name, rs[len(rs)/2], rs[0], rs[len(rs)-1], sizes[j], float64(sizes[j])/float64(sizes[0]))
	}
}
