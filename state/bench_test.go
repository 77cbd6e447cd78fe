package state

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkRecordDelivery measures durable RecordDelivery calls from
// concurrent goroutines (b.RunParallel, GOMAXPROCS×p of them) against a real
// bbolt file. The reported txs/op (< 1 under concurrency) shows DB.Batch
// grouping several deliveries into one transaction and fsync.
func BenchmarkRecordDelivery(b *testing.B) {
	for _, par := range []int{1, 4, 16} {
		b.Run(map[int]string{1: "p1", 4: "p4", 16: "p16"}[par], func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "rida.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var (
				n   atomic.Int64
				mu  sync.Mutex
				txs = map[int]bool{}
			)
			s.recordTxHook = func(id int) { mu.Lock(); txs[id] = true; mu.Unlock() }
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.RecordDelivery(ctx, testDelivery(int(n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(len(txs))/float64(b.N), "txs/op")
		})
	}
}
