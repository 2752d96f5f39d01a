package shardtag

import (
	"fmt"
	"testing"
)

// Known slots, from Redis's own documentation and CLUSTER KEYSLOT.
func TestSlotMatchesRedisClusterKeyslot(t *testing.T) {
	for _, c := range []struct {
		key  string
		slot int
	}{
		{"123456789", 0x31C3 % Slots}, // the CRC16/XMODEM check value 0x31C3
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", Slot("user1000")},
		{"{user1000}.followers", Slot("user1000")},
		{"foo{}{bar}", Slot("foo{}{bar}")}, // empty tag: the whole key
		{"foo{{bar}}zap", Slot("{bar")},
		{"foo{bar}{zap}", Slot("bar")},
		{"{", Slot("{")},
	} {
		if got := Slot(c.key); got != c.slot {
			t.Errorf("Slot(%q) = %d, want %d", c.key, got, c.slot)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Errorf("an empty tag must hash the whole key")
	}
}

func TestEveryBucketTagLiesInItsOwnSlotRange(t *testing.T) {
	tb := New()
	seen := map[string]bool{}
	for b := range Buckets {
		tag := tb.Tag(b)
		lo, hi := b*Slots/Buckets, (b+1)*Slots/Buckets
		if s := Slot(tag + "x"); s < lo || s >= hi {
			t.Errorf("bucket %d: tag %s has slot %d, want [%d,%d)", b, tag, s, lo, hi)
		}
		if seen[tag] {
			t.Errorf("tag %s twice", tag)
		}
		seen[tag] = true
	}
}

// Bucket must spread typical uid sets (sequential, strided by a power of two) evenly:
// no bucket more than 25% above or below the mean.
func TestBucketSpreadsSequentialAndStridedUIDsEvenly(t *testing.T) {
	for _, stride := range []uint64{1, 2, 256, 1 << 20} {
		t.Run(fmt.Sprint("stride", stride), func(t *testing.T) {
			var n [Buckets]int
			const users = 256_000
			for i := range uint64(users) {
				n[Bucket(1_000_000_000+i*stride)]++
			}
			mean := users / Buckets
			for b, c := range n {
				if c < mean*3/4 || c > mean*5/4 {
					t.Fatalf("bucket %d holds %d users, mean %d", b, c, mean)
				}
			}
		})
	}
}

// With Redis Cluster's usual split of the slot space into contiguous ranges, every
// shard of 3 gets 85 or 86 buckets.
func TestBucketsSpreadOverThreeShardsWithinOne(t *testing.T) {
	tb := New()
	var per [3]int
	for b := range Buckets {
		s := Slot(tb.Tag(b))
		switch {
		case s <= 5460:
			per[0]++
		case s <= 10922:
			per[1]++
		default:
			per[2]++
		}
	}
	for i, n := range per {
		if n < 85 || n > 86 {
			t.Errorf("shard %d holds %d buckets: %v", i, n, per)
		}
	}
}

func FuzzSlotStaysInRange(f *testing.F) {
	for _, s := range []string{"", "{", "}", "{}", "a{b}c", "{{}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if s := Slot(key); s < 0 || s >= Slots {
			t.Fatalf("Slot(%q) = %d", key, s)
		}
	})
}
