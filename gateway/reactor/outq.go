package reactor

// Outbound chunks grow from minChunk to maxChunk bytes: a connection that is only a
// little behind holds one small chunk, a badly backlogged one holds large chunks that
// writev flushes efficiently.
const (
	minChunk = 1 << 10
	maxChunk = 16 << 10
)

// outQueue is a connection's unsent output: pooled chunks, oldest first. It exists only
// while output is pending; an idle connection holds none (c.out == nil).
// All access is under Conn.mu.
type outQueue struct {
	chunks []*[]byte // each chunk's len is how much of it is filled
	head   int       // bytes of chunks[0] already sent
	size   int       // unsent bytes in total
}

// push copies b to the tail of the queue.
func (q *outQueue) push(p *bufPool, b []byte) {
	q.size += len(b)
	for len(b) > 0 {
		if n := len(q.chunks); n > 0 {
			tail := q.chunks[n-1]
			if free := cap(*tail) - len(*tail); free > 0 {
				k := min(free, len(b))
				*tail = append(*tail, b[:k]...)
				b = b[k:]
				continue
			}
		}
		q.chunks = append(q.chunks, p.get(min(max(len(b), minChunk), maxChunk)))
	}
}

// appendIovecs appends the unsent bytes, chunk by chunk, to iov up to its capacity.
func (q *outQueue) appendIovecs(iov [][]byte) [][]byte {
	for i, c := range q.chunks {
		if len(iov) == cap(iov) {
			break
		}
		b := *c
		if i == 0 {
			b = b[q.head:]
		}
		iov = append(iov, b)
	}
	return iov
}

// consume drops n sent bytes from the head, returning emptied chunks to the pool.
func (q *outQueue) consume(p *bufPool, n int) {
	q.size -= n
	for n > 0 {
		c := q.chunks[0]
		left := len(*c) - q.head
		if n < left {
			q.head += n
			return
		}
		n -= left
		p.put(c)
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
	}
}

// release returns every chunk to the pool and empties the queue.
func (q *outQueue) release(p *bufPool) {
	for i, c := range q.chunks {
		p.put(c)
		q.chunks[i] = nil
	}
	q.chunks, q.head, q.size = nil, 0, 0
}
