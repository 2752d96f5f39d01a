package link

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCalls runs b.N calls over loopback from callers goroutines (1: each call
// waits for the previous, the idle link's case) and reports the process's CPU per
// call, both ends included, as cpu-ns/op.
func benchCalls(b *testing.B, callers int) {
	c, ctx := benchLink(b)
	body := make([]byte, 100)
	b.SetParallelism(callers)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	if callers == 1 {
		for range b.N {
			if _, err := c.Call(ctx, 1, body); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Call(ctx, 1, body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCallCPU measures the CPU a round trip costs, one caller at a time
// (Serial) and with 16 callers per core pipelining (Parallel).
func BenchmarkCallCPU(b *testing.B) {
	b.Run("Serial", func(b *testing.B) { benchCalls(b, 1) })
	b.Run("Parallel", func(b *testing.B) { benchCalls(b, 16) })
}

// benchLink serves echoHandler on loopback and returns a client connected to it,
// and a context; both end with the benchmark.
func benchLink(b *testing.B) (*Client, context.Context) {
	b.Helper()
	s, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Handler: echoHandler, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go s.Serve(ctx)
	c := Dial(ClientConfig{Addr: s.Addr(), Secret: secret, Name: "bench", Logger: quiet()})
	b.Cleanup(c.Close)
	c.WaitConnected(ctx)
	return c, ctx
}
