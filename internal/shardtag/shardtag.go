// Package shardtag spreads users over Redis Cluster shards: each user falls in one
// of Buckets buckets, and each bucket has a hash tag whose slot lies in its own
// 1/Buckets of the slot space.
//
// Why buckets and not a tag per user: the stores keep a few keys per bucket as well
// as per user (msg's id counter and pending set, state's session index), and a
// script may only touch keys of one slot. With the user's keys and its bucket's keys
// under one tag, every script stays on one shard. Why the tags are searched for
// rather than taken as "{b}": Redis Cluster gives each shard a contiguous range of
// slots, so tags placed evenly over the slot space put Buckets/shards buckets on
// every shard (within one), where tags hashed at random would leave some shards with
// noticeably more than others.
package shardtag

import "strconv"

// Buckets is how many buckets users are spread over. 256 gives every shard of a
// 3-shard cluster 85 or 86 buckets (spread 1.2%), and keeps per-bucket walks (a
// sweep, a restart's scan of pending users) to 256 small scripts.
const Buckets = 256

// Slots is the size of Redis Cluster's slot space.
const Slots = 16384

// Table maps buckets to hash tags. Its zero value is not usable: use New.
type Table struct {
	tags [Buckets]string
}

// New computes the tags: for bucket b, the first base-36 counter whose CRC16 slot
// lies in [b·Slots/Buckets, (b+1)·Slots/Buckets). The search is deterministic, so
// every process (and every version) agrees on the layout; it costs about 65k CRC16s
// of short strings, well under a millisecond.
func New() *Table {
	t := &Table{}
	const width = Slots / Buckets
	for b := range Buckets {
		for k := uint64(0); ; k++ {
			s := strconv.FormatUint(k, 36)
			if Slot(s)/width == b {
				t.tags[b] = "{" + s + "}"
				break
			}
		}
	}
	return t
}

// Bucket is uid's bucket: a mixing hash of uid (SplitMix64's finaliser), so that
// sequential or strided uids spread evenly, mod Buckets.
func Bucket(uid uint64) int {
	z := uid + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return int(z % Buckets)
}

// Tag is bucket b's hash tag, braces included ("{k3f}").
func (t *Table) Tag(b int) string { return t.tags[b] }

// UserTag is the hash tag of uid's bucket.
func (t *Table) UserTag(uid uint64) string { return t.tags[Bucket(uid)] }

// Slot is the Redis Cluster slot of key: CRC16 of the key, or of the part between
// the first '{' and the next '}' when that part is not empty, mod Slots.
func Slot(key string) int {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					return int(crc16(key) % Slots)
				}
			}
			break
		}
	}
	return int(crc16(key) % Slots)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis
// Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
