package policy

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Production stage: 15,000 cuts x 2,080 coefficients (~238 MiB).
const benchCuts, benchDim = 15000, 2080

// benchStage builds the stage over one contiguous backing slice (also used
// as the plain-[]float64 / memcpy reference, so only the source and the
// builder's buffer are alive: ~500 MB).
func benchStage() (*StageCuts, []float64) {
	r := rand.New(rand.NewPCG(1, 1))
	backing := make([]float64, benchCuts*benchDim)
	for i := range backing {
		backing[i] = r.Float64() - 0.5
	}
	s := &StageCuts{StageID: 1, StateDimension: benchDim, Capacity: benchCuts}
	s.Cuts = make([]Cut, benchCuts)
	for i := range s.Cuts {
		s.Cuts[i] = Cut{CutID: uint64(i), SlotIndex: uint32(i), Iteration: uint32(i / 10), Intercept: float64(i),
			Coefficients: backing[i*benchDim : (i+1)*benchDim : (i+1)*benchDim], IsActive: i%3 != 0}
	}
	return s, backing
}

func sum4(v []float64) float64 {
	var a, b, c, d float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a += v[i]
		b += v[i+1]
		c += v[i+2]
		d += v[i+3]
	}
	for ; i < len(v); i++ {
		a += v[i]
	}
	return a + b + c + d
}

var sink float64

// BenchmarkEncodeStage encodes the production stage with a reused,
// pre-sized Writer and, in the same iteration, memcpys the same
// coefficient bytes into the same buffer. encode/memcpy = memcpy time /
// encode time (target >= 0.5).
func BenchmarkEncodeStage(b *testing.B) {
	s, backing := benchStage()
	src := float64Bytes(backing)
	w := NewWriter(StageCutsSize(s))
	if _, err := w.EncodeStageCuts(s); err != nil { // warm: pages faulted in
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	var tEnc, tCpy time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := w.EncodeStageCuts(s); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		copy(w.b.Bytes, src)
		tCpy += time.Since(t1)
		tEnc += t1.Sub(t0)
	}
	gb := float64(len(src)) * float64(b.N) / 1e9
	b.ReportMetric(gb/tEnc.Seconds(), "encode-GB/s")
	b.ReportMetric(gb/tCpy.Seconds(), "memcpy-GB/s")
	b.ReportMetric(tCpy.Seconds()/tEnc.Seconds(), "encode/memcpy")
}

// BenchmarkReadStage sums every coefficient through the zero-copy views
// of a verified stage and, in the same iteration, sums the plain []float64
// of the same size. views/plain = plain time / view time (target >= 0.8).
// verify-ms is the cost of ReadStageCuts itself (verification + views).
func BenchmarkReadStage(b *testing.B) {
	s, backing := benchStage()
	w := NewWriter(StageCutsSize(s))
	buf, err := w.EncodeStageCuts(s)
	if err != nil {
		b.Fatal(err)
	}
	s = nil
	t0 := time.Now()
	v, err := ReadStageCuts(buf)
	verify := time.Since(t0)
	if err != nil || !v.ZeroCopy {
		b.Fatalf("read: %v zero-copy=%v", err, v != nil && v.ZeroCopy)
	}
	b.SetBytes(int64(len(backing) * 8))
	b.ResetTimer()
	var tView, tPlain time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		var acc float64
		for k := range v.Cuts {
			acc += sum4(v.Cuts[k].Coefficients())
		}
		t1 := time.Now()
		plain := sum4(backing)
		tPlain += time.Since(t1)
		tView += t1.Sub(t0)
		sink += acc - plain
	}
	gb := float64(len(backing)*8) * float64(b.N) / 1e9
	b.ReportMetric(gb/tView.Seconds(), "view-GB/s")
	b.ReportMetric(gb/tPlain.Seconds(), "plain-GB/s")
	b.ReportMetric(tPlain.Seconds()/tView.Seconds(), "views/plain")
	b.ReportMetric(float64(verify.Microseconds())/1000, "verify-ms")
}
