package shard

import (
	"math/bits"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// poolAllocator serves arrow-go's page and level buffers from free lists
// of power-of-two sizes instead of fresh Go allocations: every file
// otherwise allocates (and the GC later sweeps) a few MB of page buffers
// that are about to be needed again for the next file. Buffers come back
// zeroed, as from the Go allocator, because arrow-go relies on it.
type poolAllocator struct {
	classes [40]chan []byte
}

const (
	minClass  = 12 // 4 KiB: smaller buffers are cheap to allocate
	maxClass  = 27 // 128 MiB: larger ones are rare and not kept
	perClass  = 32
	alignment = 64
)

func newPoolAllocator() *poolAllocator {
	a := &poolAllocator{}
	for c := minClass; c <= maxClass; c++ {
		a.classes[c] = make(chan []byte, perClass)
	}
	return a
}

func class(size int) int {
	if size <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(size - 1))
}

// Allocate returns a zeroed, 64-byte-aligned buffer of len size.
func (a *poolAllocator) Allocate(size int) []byte {
	c := class(size)
	if c > maxClass {
		return memory.DefaultAllocator.Allocate(size)
	}
	select {
	case b := <-a.classes[c]:
		b = b[:size]
		clear(b)
		return b
	default:
	}
	buf := make([]byte, 1<<c+alignment)
	shift := (alignment - int(uintptr(unsafe.Pointer(&buf[0])))%alignment) % alignment
	return buf[shift : shift+size : shift+1<<c]
}

// Reallocate grows b to size, keeping its contents.
func (a *poolAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

// Free returns b to its free list when it is one of ours.
func (a *poolAllocator) Free(b []byte) {
	if cap(b) < 1<<minClass {
		return
	}
	c := bits.Len(uint(cap(b))) - 1
	if cap(b) != 1<<c || c > maxClass {
		return
	}
	select {
	case a.classes[c] <- b[:0]:
	default:
	}
}
