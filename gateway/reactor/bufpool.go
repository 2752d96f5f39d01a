package reactor

import (
	"math/bits"
	"sync"
)

// Buffer size classes are powers of two from minClass to maxClass bytes. Larger requests
// are allocated exactly and never pooled: they are rare (frames over 1 MiB) and pooling
// them would pin large blocks.
const (
	minClassShift = 8  // 256 B
	maxClassShift = 20 // 1 MiB
	numClasses    = maxClassShift - minClassShift + 1
)

// bufPool hands out byte slices by power-of-two size class. Pointers to slices are
// pooled so that Put does not allocate a slice header. sync.Pool empties itself across
// GC cycles, so buffers that idle connections returned do not stay pinned (the failure
// mode of nbio#501 and gnet#306: a pool that holds gigabytes after a burst).
type bufPool struct {
	classes [numClasses]sync.Pool
}

// classOf returns the class index for a buffer of at least n bytes, or -1 if n is over
// the largest class.
func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxClassShift {
		return -1
	}
	return shift - minClassShift
}

// get returns a buffer with len 0 and cap >= n.
func (p *bufPool) get(n int) *[]byte {
	ci := classOf(n)
	if ci < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v := p.classes[ci].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1<<(ci+minClassShift))
	return &b
}

// put returns b to its class. Buffers whose capacity is not exactly a class size (the
// oversized ones) are dropped for the GC.
func (p *bufPool) put(b *[]byte) {
	c := cap(*b)
	ci := classOf(c)
	if ci < 0 || c != 1<<(ci+minClassShift) {
		return
	}
	*b = (*b)[:0]
	p.classes[ci].Put(b)
}
