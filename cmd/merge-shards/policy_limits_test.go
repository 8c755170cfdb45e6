package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hydroshard/hydroshard/internal/testtools"
	"github.com/hydroshard/hydroshard/policy"
)

// zeroBomb is one zstd frame with no content size in its header whose
// blocks are RLE blocks of 128 KiB zeros: total bytes of content in 4
// bytes per block (2 GiB in 64 KiB), as small as a bomb gets.
func zeroBomb(total int64) []byte {
	const blk = 128 << 10
	// Magic; frame header descriptor 0 (no content size, not single
	// segment, no checksum, no dictionary); window descriptor 128 KiB.
	z := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3}
	n := total / blk
	for i := range n {
		h := uint32(1<<1) | uint32(blk)<<3 // RLE block of blk bytes
		if i == n-1 {
			h |= 1 // last block
		}
		z = append(z, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return z
}

// inflatedSize decompresses z by streaming (bounded memory) and returns
// its content size, after checking that its header does not record it.
func inflatedSize(t *testing.T, z []byte) int64 {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(z); err != nil || h.HasFCS {
		t.Fatalf("the bomb's frame header records its content size (%v): the test needs one that does not", err)
	}
	d, err := zstd.NewReader(bytes.NewReader(z), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n, err := io.Copy(io.Discard, d)
	if err != nil {
		t.Fatalf("the bomb does not decompress: %v", err)
	}
	return n
}

// limitedResult is a merge-shards run under resource limits, with its
// peak resident memory.
type limitedResult struct {
	result
	maxRSS int64 // bytes
}

// mergeShardsLimited runs merge-shards with its address space limited to
// as bytes and the files it writes to fsize bytes (RLIMIT_AS and
// RLIMIT_FSIZE, through prlimit(1), or sh's ulimit when prlimit is
// missing). Death by a signal fails the test.
func mergeShardsLimited(t *testing.T, as, fsize int64, args ...string) limitedResult {
	t.Helper()
	argv := append([]string{mergeBin}, args...)
	ctx := testCtx(t)
	var cmd *exec.Cmd
	if p, err := exec.LookPath("prlimit"); err == nil {
		cmd = exec.CommandContext(ctx, p, append([]string{"--as=" + strconv.FormatInt(as, 10), "--fsize=" + strconv.FormatInt(fsize, 10), "--"}, argv...)...)
	} else {
		script := fmt.Sprintf(`ulimit -v %d && ulimit -f %d && exec "$@"`, as>>10, fsize>>9)
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sh"}, argv...)...)
	}
	// Under RLIMIT_AS every thread costs its stack and a malloc arena:
	// pin the thread count, as a small node has.
	cmd.Env = testtools.CleanEnv("GOMAXPROCS=2")
	r := limitedResult{result: runCmd(t, cmd, args, fmt.Sprintf("merge-shards %v under limits (address space %d bytes; out of memory?)", args, as))}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	return r
}

// TestPolicyUnpackZipBomb: a 64 KiB .bin.zst whose frame records no
// content size and inflates to 2 GiB of zeros, listed in metadata.json at
// the real stage file's size. `policy unpack`, run with a 2 GiB address
// space and files capped at 16 MiB, refuses it with exit 2 (corrupt input,
// not an out-of-memory death) naming the file and the listed size, in a
// few MiB; the .zst stays byte for byte, no .bin or temp file is left.
// A bomb made by zstd's own streaming encoder (larger: 416 KiB) is refused
// the same way, by its size alone, before decompressing.
func TestPolicyUnpackZipBomb(t *testing.T) {
	t.Parallel()
	// The limits must be in force for the test to mean anything.
	const as, fsize = 2 << 30, 16 << 20
	if p, err := exec.LookPath("prlimit"); err == nil {
		out, err := exec.Command(p, "--as="+strconv.Itoa(as), "--", "/bin/sh", "-c", "ulimit -v").Output()
		if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(as>>10) {
			t.Fatalf("prlimit --as=%d: ulimit -v says %q (%v)", as, out, err)
		}
	}

	dir := mergedPolicy(t)
	before := snapshotHashes(t, dir)
	raw, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md policy.Metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatal(err)
	}

	streamed := func() []byte {
		var b bytes.Buffer
		enc, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		zeros := make([]byte, 1<<20)
		for range 2 << 10 {
			if _, err := enc.Write(zeros); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, c := range []struct {
		rel  string // the stage file replaced by the bomb
		bomb []byte
		want func(listed int64) string // what unpack says besides the file's name
	}{
		{"cuts/stage_001.bin", zeroBomb(2 << 30), func(n int64) string {
			return fmt.Sprintf("decompresses to more than the %d bytes metadata.json lists (stopped at %d bytes; its zstd frame declares no content size)", n, n+1)
		}},
		{"basis/stage_000.bin", streamed(), func(n int64) string {
			return fmt.Sprintf("more than the %d listed bytes compress to", n)
		}},
	} {
		if n := inflatedSize(t, c.bomb); n != 2<<30 {
			t.Fatalf("the bomb inflates to %d bytes, want 2 GiB", n)
		}
		e, ok := md.Files[c.rel]
		if !ok {
			t.Fatalf("metadata.json does not list %s", c.rel)
		}
		// Every stage file packed, then one .zst replaced by the bomb.
		wantExit(t, mergeShards(t, "policy", "pack", dir), 0)
		victim := filepath.Join(dir, filepath.FromSlash(c.rel)) + policy.PackedExt
		orig, err := os.ReadFile(victim)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(victim, c.bomb, 0o644); err != nil {
			t.Fatal(err)
		}

		r := mergeShardsLimited(t, as, fsize, "policy", "unpack", dir)
		t.Logf("%s: a %d-byte bomb listed at %d bytes: exit %d, peak RSS %.1f MiB", c.rel, len(c.bomb), e.Bytes, r.code, float64(r.maxRSS)/(1<<20))
		if strings.Contains(r.stderr, "out of memory") || strings.Contains(r.stderr, "fatal error") {
			t.Fatalf("unpack ran out of memory:\n%s", r.result)
		}
		wantExit(t, r.result, 2)
		zrel := c.rel + policy.PackedExt
		if !strings.Contains(r.stderr, zrel) || !strings.Contains(r.stderr, c.want(e.Bytes)) {
			t.Fatalf("unpack does not name %s, its listed %d bytes and what it found:\n%s", zrel, e.Bytes, r.result)
		}
		if r.maxRSS > 256<<20 {
			t.Fatalf("unpack peaked at %d bytes of memory", r.maxRSS)
		}
		if got, err := os.ReadFile(victim); err != nil || !bytes.Equal(got, c.bomb) {
			t.Fatalf("the .zst was not left in place (%v)", err)
		}
		ents, err := os.ReadDir(filepath.Dir(victim))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			if n := ent.Name(); n != filepath.Base(victim) && !strings.HasSuffix(n, ".bin.zst") && !strings.HasSuffix(n, ".bin") {
				t.Fatalf("%s left in %s", n, filepath.Dir(victim))
			}
		}
		mustNotExist(t, strings.TrimSuffix(victim, policy.PackedExt))

		// Put the real .zst back: nothing was lost.
		if err := os.WriteFile(victim, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantExit(t, mergeShards(t, "policy", "unpack", dir), 0)
	if after := snapshotHashes(t, dir); len(after) != len(before) {
		t.Fatalf("after the bombs and a clean unpack: %d stage files, want %d", len(after), len(before))
	} else {
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("%s differs after the bombs and a clean unpack", k)
			}
		}
	}
}
