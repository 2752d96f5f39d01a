package msg

import (
	"encoding/binary"
	"fmt"
)

// The link methods between the msg service and the router. The msg server dials the
// router: it sends RouteMethod notifications on that link, and the router answers
// with SettleMethod notifications on the same link. Both are one-way (link Notify),
// so neither side waits for the other; a notification lost with a broken link is
// made good by the msg server, which resends every message the router has not
// settled, and replays them all when the link comes back.
const (
	// RouteMethod, msg → router: "route this stored message". Body: AppendMessage
	// of the stored message (Seq, Epoch and ID set). It is a method of the router's
	// link listener, not of the msg server's (whose methods are MethodAppend and the
	// rest). The router may receive one message several times (resends) and
	// deduplicates those it is still working on.
	RouteMethod uint16 = 1
	// SettleMethod, router → msg: "done with these messages": each was taken by its
	// recipient's gateway for a live session, or its recipient is offline (the
	// message stays stored for the recipient's next SYNC either way). Body:
	// n × (u64 uid | u64 seq | u64 id), n >= 1, at most MaxSettles.
	SettleMethod uint16 = 2
)

// Settle names one message the router is done with (see SettleMethod).
type Settle struct {
	UID, Seq, ID uint64
}

// SettleSize is one Settle's encoded size.
const SettleSize = 24

// MaxSettles is the most settles one SettleMethod body carries.
const MaxSettles = 4096

// AppendSettle appends one settle to a SettleMethod body.
func AppendSettle(b []byte, s Settle) []byte {
	b = binary.BigEndian.AppendUint64(b, s.UID)
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	return binary.BigEndian.AppendUint64(b, s.ID)
}

// DecodeSettles decodes a SettleMethod body, appending its settles to dst.
func DecodeSettles(dst []Settle, b []byte) ([]Settle, error) {
	if len(b) == 0 || len(b)%SettleSize != 0 || len(b)/SettleSize > MaxSettles {
		return dst, fmt.Errorf("%w: settle body of %d bytes", errMalformed, len(b))
	}
	for ; len(b) > 0; b = b[SettleSize:] {
		dst = append(dst, Settle{
			UID: binary.BigEndian.Uint64(b),
			Seq: binary.BigEndian.Uint64(b[8:]),
			ID:  binary.BigEndian.Uint64(b[16:]),
		})
	}
	return dst, nil
}
