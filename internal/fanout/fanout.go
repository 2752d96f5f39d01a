// Package fanout runs one function over many items on a bounded number of
// goroutines, each with its own scratch state.
package fanout

import (
	"context"
	"sync"
)

// Each calls fn for every item on at most workers goroutines and returns when all
// calls have returned, or, once ctx ends, without starting the items not yet taken.
// Each goroutine starts with its own zero S, which fn may use and returns (an
// encoding buffer kept across one goroutine's calls, say). Items are taken in order.
func Each[T, S any](ctx context.Context, items []T, workers int, fn func(item T, scratch S) S) {
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			var scratch S
			for it := range next {
				scratch = fn(it, scratch)
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}
