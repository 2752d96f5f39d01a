package loadgen

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/gateway/proto"
)

// Hostile classes: connections that abuse the client port. None of them is a user
// of the ledger: they send to, and log in as, uids outside the plan's user range,
// so they never touch the normal clients' accounting.
const (
	// HostileSlowloris connects and sends an unfinished LOGIN one byte a second.
	HostileSlowloris = "slowloris"
	// HostilePrelogin connects and sends nothing.
	HostilePrelogin = "prelogin"
	// HostileGarbage sends random bytes (a length prefix of at least 16 MiB) or
	// a well-sized frame of an undefined type, alternately.
	HostileGarbage = "garbage"
	// HostileOversized sends a LOGIN header announcing 64 KiB, far beyond the
	// pre-login frame limit, then its body 1 KiB every 100 ms.
	HostileOversized = "oversized"
	// HostileSendFlood logs in as a uid outside the user range and SENDs
	// maximum-size payloads to one made-up recipient (the same for every slot of
	// an agent) as fast as the socket takes them.
	HostileSendFlood = "send_flood"
	// HostileSyncLoop logs in and SYNCs from 0 in a tight loop.
	HostileSyncLoop = "sync_loop"
	// HostileMadeUpRecipients logs in and SENDs small messages to random uids far
	// outside the user range, as fast as the socket takes them.
	HostileMadeUpRecipients = "made_up_recipients"
)

// HostileClassNames lists every hostile class in a fixed order.
func HostileClassNames() []string {
	return []string{HostileSlowloris, HostilePrelogin, HostileGarbage, HostileOversized,
		HostileSendFlood, HostileSyncLoop, HostileMadeUpRecipients}
}

// How a hostile connection ended, besides "KICK <reason>/<code>".
const (
	EndEOF       = "eof"         // the server closed without a KICK
	EndReset     = "reset"       // the server reset the connection
	EndOpenAtEnd = "open_at_end" // still open when the run ended: the agent closed it
	EndError     = "error"       // another read error, or a frame the agent could not parse
)

// Hostile-connection timing.
const (
	// hostileDialTimeout bounds one connect attempt.
	hostileDialTimeout = 5 * time.Second
	// hostilePause is the least wait between a slot's connections (jittered up
	// to twice as long), so a class the server closes at once reconnects a
	// bounded number of times: at most run time ÷ hostilePause per slot.
	hostilePause = time.Second
	// hostileMaxPerSlot caps one slot's connections over a run, whatever its length.
	hostileMaxPerSlot = 100_000
	// slowlorisLength is the frame length a slowloris LOGIN announces: within the
	// pre-login limit, so only the login deadline can end it; at a byte a second
	// it is never finished in a run.
	slowlorisLength = 900
	// oversizedLength is the frame length an oversized LOGIN announces.
	oversizedLength = proto.DefaultMaxFrame
	oversizedChunk  = 1 << 10
	oversizedEvery  = 100 * time.Millisecond
	// madeUpPayload is the SEND payload of made_up_recipients.
	madeUpPayload = 32
	// hostileSndbuf is each hostile connection's SO_SNDBUF: a flood goes out as
	// fast as the server reads it, while the agent's kernel holds at most this
	// much of it per connection (autotuning would let each queue megabytes, and
	// count them as sent).
	hostileSndbuf = 128 << 10
)

// UID ranges of the hostile logins and recipients: far above any plan's users
// (at most a few million), so nothing hostile reaches a normal user's inbox.
const (
	hostileUIDBase = uint64(1) << 40 // + segment<<24 + class<<20 + slot: login uids
	// hostileVictimBit marks the one recipient of an agent's send_flood slots,
	// hostileUIDBase | hostileVictimBit | segment<<24: one inbox per agent takes
	// the whole flood, so storage is bounded by one inbox's limit per agent.
	hostileVictimBit  = uint64(1) << 39
	hostileMadeUpBase = uint64(1) << 41 // made-up recipients are drawn from [2^41, 2^42)
)

// HostileClass is one hostile behaviour's share of a plan.
type HostileClass struct {
	Class string `json:"class"`
	// Conns is how many connections of the class the whole plan keeps open at
	// once (each slot reconnects after the server closes it).
	Conns int `json:"conns"`
	// Bound is how long after its connect the server must have closed each one.
	Bound Duration `json:"bound"`
}

// HostileResult is one class's outcome on one agent.
type HostileResult struct {
	Class string   `json:"class"`
	Bound Duration `json:"bound"`
	// Conns is the agent's share of the class: connections it keeps open at once.
	Conns           int    `json:"conns"`
	Opened          uint64 `json:"opened"`
	ConnectFailures uint64 `json:"connect_failures"`
	// Closed are connections the server closed; WithinBound those it closed
	// within Bound of their connect.
	Closed      uint64 `json:"closed"`
	WithinBound uint64 `json:"closed_within_bound"`
	// OverBound are connections closed after Bound, or still open past it when
	// the run ended; OpenAtEnd are those still open when the run ended (the
	// agent waited for each until its Bound, then closed it).
	OverBound uint64 `json:"over_bound"`
	OpenAtEnd uint64 `json:"open_at_end"`
	PeakOpen  int    `json:"peak_open"`
	// CloseUS is the time from connect to the connection's end, in µs, over every
	// connection (those open at the end at the time the agent closed them);
	// CloseHist is the same as a base64 compressed HdrHistogram, for merging.
	CloseUS   Percentiles `json:"close_us"`
	CloseHist string      `json:"close_hist,omitempty"`
	// Endings counts how connections ended: "KICK <reason>/<code>", eof, reset,
	// open_at_end or error.
	Endings map[string]uint64 `json:"endings"`
	// Errors counts the ERROR frames received, by code.
	Errors    map[string]uint64 `json:"errors"`
	BytesSent uint64            `json:"bytes_sent"`
}

// hostileDialer opens a connection for slot of a class.
type hostileDialer func(ctx context.Context, class, slot int) (net.Conn, error)

// hostileFleet runs an agent's hostile connections: per class, a number of slots,
// each a goroutine that connects, misbehaves until the server closes it, records
// how and when, pauses and connects again, until the fleet is stopped.
type hostileFleet struct {
	seed    uint64
	segment int
	signer  *proto.Signer
	dial    hostileDialer
	classes []*hostileRun

	stopOnce sync.Once
	stop     chan struct{} // closed: open no more connections; wait out the open ones' bounds
	wg       sync.WaitGroup
	open     atomic.Int64
}

// hostileRun is one class on one agent.
type hostileRun struct {
	idx  int
	spec HostileClass
	mu   sync.Mutex
	res  HostileResult
	hist *hdrhistogram.Histogram
	open int
}

// newHostileFleet prepares the segment's share of every class.
func newHostileFleet(p *Plan, seg Segment, signer *proto.Signer, dial hostileDialer) *hostileFleet {
	f := &hostileFleet{seed: uint64(p.Seed), segment: seg.Index, signer: signer, dial: dial, stop: make(chan struct{})}
	for i, hc := range p.Hostile {
		n := hc.Conns*(seg.Index+1)/seg.Count - hc.Conns*seg.Index/seg.Count
		f.classes = append(f.classes, &hostileRun{idx: i, spec: hc, hist: NewHistogram(), res: HostileResult{
			Class: hc.Class, Bound: hc.Bound, Conns: n, Endings: map[string]uint64{}, Errors: map[string]uint64{}}})
	}
	return f
}

// conns is how many connections the fleet keeps open at once.
func (f *hostileFleet) conns() int {
	n := 0
	for _, c := range f.classes {
		n += c.res.Conns
	}
	return n
}

// start launches every slot; they run until ctx ends or stopOpening.
func (f *hostileFleet) start(ctx context.Context) {
	for _, c := range f.classes {
		for slot := range c.res.Conns {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.runSlot(ctx, c, slot)
			}()
		}
	}
}

// stopOpening stops the slots from connecting again; open connections get until
// their bound to be closed by the server.
func (f *hostileFleet) stopOpening() { f.stopOnce.Do(func() { close(f.stop) }) }

// finish stops the fleet, waits for every slot (each open connection at most
// until its bound) and returns the per-class results.
func (f *hostileFleet) finish() []HostileResult {
	f.stopOpening()
	f.wg.Wait()
	out := make([]HostileResult, 0, len(f.classes))
	for _, c := range f.classes {
		c.mu.Lock()
		r := c.res
		r.CloseUS = Summarise(c.hist)
		if c.hist.TotalCount() > 0 {
			if b, err := c.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
				r.CloseHist = string(b)
			}
		}
		c.mu.Unlock()
		out = append(out, r)
	}
	return out
}

// stopped reports whether the fleet should open no more connections.
func (f *hostileFleet) stopped(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-f.stop:
		return true
	default:
		return false
	}
}

// pause waits d; false if the fleet stopped meanwhile.
func (f *hostileFleet) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-f.stop:
		return false
	case <-t.C:
		return true
	}
}

// runSlot is one slot's loop: connect, misbehave until closed, pause, again.
//
// The first connect comes at a random point within the class's bound (at least
// two pauses): slots that all started together would stay in step — every holder
// kicked at the same tick of the login deadline, every one reconnecting in the
// same second — a synchronised wave no crowd of independent clients makes, and
// one that would measure the generator's artefact rather than the server.
func (f *hostileFleet) runSlot(ctx context.Context, c *hostileRun, slot int) {
	rng := rand.New(rand.NewPCG(f.seed^uint64(f.segment)<<48, uint64(c.idx)<<32|uint64(slot)))
	spread := max(time.Duration(c.spec.Bound), 2*hostilePause)
	if !f.pause(ctx, time.Duration(rng.Int64N(int64(spread)))) {
		return
	}
	for n := 0; n < hostileMaxPerSlot && !f.stopped(ctx); n++ {
		dctx, cancel := context.WithTimeout(ctx, hostileDialTimeout)
		nc, err := f.dial(dctx, c.idx, slot)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.res.ConnectFailures++
			c.mu.Unlock()
		} else {
			f.hold(ctx, c, slot, n, nc, rng)
		}
		if !f.pause(ctx, hostilePause+time.Duration(rng.Int64N(int64(hostilePause)))) {
			return
		}
	}
}

// hostileConn is one hostile connection in progress.
type hostileConn struct {
	nc         net.Conn
	loggedIn   chan struct{} // closed on LOGIN_OK
	ended      chan struct{} // closed when the read side ended
	maxPayload atomic.Int64  // from LOGIN_OK
	forced     atomic.Bool   // the agent closed it: still open at the end
	sent       atomic.Uint64 // bytes written
}

// write writes b, counting what went out; false once the connection is done.
func (h *hostileConn) write(b []byte) bool {
	n, err := h.nc.Write(b)
	h.sent.Add(uint64(n))
	return err == nil
}

// wait waits d or until the connection ended; false if it ended.
func (h *hostileConn) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.ended:
		return false
	case <-t.C:
		return true
	}
}

// hold runs one connection: the behaviour writes, this goroutine reads until the
// server closes it, and a watcher closes it itself if the run ends first (at the
// connection's bound, or at once if ctx ends).
func (f *hostileFleet) hold(ctx context.Context, c *hostileRun, slot, n int, nc net.Conn, rng *rand.Rand) {
	start := time.Now()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(hostileSndbuf) //nolint:errcheck // best effort: the kernel's default otherwise
	}
	h := &hostileConn{nc: nc, loggedIn: make(chan struct{}), ended: make(chan struct{})}
	h.maxPayload.Store(int64(proto.MaxPayload(0)))
	c.opened()
	f.open.Add(1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the watcher
		defer wg.Done()
		select {
		case <-h.ended:
			return
		case <-ctx.Done():
		case <-f.stop:
			t := time.NewTimer(time.Until(start.Add(c.spec.Bound.D())))
			defer t.Stop()
			select {
			case <-h.ended:
				return
			case <-ctx.Done():
			case <-t.C:
			}
		}
		h.forced.Store(true)
		nc.Close()
	}()
	go func() { // the behaviour
		defer wg.Done()
		f.behave(c.spec.Class, h, f.loginUID(c.idx, slot), n, rng)
	}()
	ending, errs := readHostile(h)
	took := time.Since(start)
	close(h.ended)
	nc.Close()
	wg.Wait()
	f.open.Add(-1)
	if h.forced.Load() {
		ending = EndOpenAtEnd
	}
	c.record(took, ending, errs, h.sent.Load())
}

// victim is the recipient of the agent's send_flood slots.
func (f *hostileFleet) victim() uint64 {
	return hostileUIDBase | hostileVictimBit | uint64(f.segment)<<24
}

// loginUID is the uid a logging-in class's slot uses.
func (f *hostileFleet) loginUID(class, slot int) uint64 {
	return hostileUIDBase | uint64(f.segment)<<24 | uint64(class)<<20 | uint64(slot)
}

// opened counts a connection.
func (c *hostileRun) opened() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Opened++
	c.open++
	c.res.PeakOpen = max(c.res.PeakOpen, c.open)
}

// record counts a connection's end.
func (c *hostileRun) record(took time.Duration, ending string, errs map[string]uint64, sent uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	c.res.BytesSent += sent
	c.res.Endings[ending]++
	for k, v := range errs {
		c.res.Errors[k] += v
	}
	us := took.Microseconds()
	if us > histMax {
		us = histMax
	}
	c.hist.RecordValue(max(us, histMin)) //nolint:errcheck // clamped into range above
	switch {
	case ending == EndOpenAtEnd:
		c.res.OpenAtEnd++
		c.res.OverBound++
	case took <= c.spec.Bound.D():
		c.res.Closed++
		c.res.WithinBound++
	default:
		c.res.Closed++
		c.res.OverBound++
	}
}

// behave writes what the class writes, until the connection is done.
func (f *hostileFleet) behave(class string, h *hostileConn, uid uint64, n int, rng *rand.Rand) {
	switch class {
	case HostilePrelogin:
		<-h.ended
	case HostileSlowloris:
		b := loginHeader(slowlorisLength)
		b = append(b, proto.Version)
		b = binary.BigEndian.AppendUint64(b, uid)
		for len(b) < 4+slowlorisLength-1 {
			b = append(b, 'x')
		}
		for i := range b {
			if !h.write(b[i:i+1]) || !h.wait(time.Second) {
				return
			}
		}
		<-h.ended
	case HostileGarbage:
		b := make([]byte, 64)
		if n%2 == 0 {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			b[0] |= 1 // a length prefix of at least 16 MiB: too large under any limit
		} else {
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			b[4] = 0x7F // an undefined frame type
		}
		h.write(b)
		<-h.ended
	case HostileOversized:
		b := loginHeader(oversizedLength)
		if !h.write(b) {
			return
		}
		chunk := make([]byte, oversizedChunk)
		for left := oversizedLength - 1; left > 0; left -= len(chunk) {
			if !h.wait(oversizedEvery) || !h.write(chunk[:min(len(chunk), left)]) {
				return
			}
		}
		<-h.ended
	case HostileSendFlood, HostileSyncLoop, HostileMadeUpRecipients:
		if !f.login(h, uid) {
			return
		}
		f.abuse(class, h, uid, rng)
	}
}

// loginHeader is a LOGIN frame header announcing length (type byte included).
func loginHeader(length int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(length))
	return append(b, byte(proto.TypeLogin))
}

// login logs in as uid with a valid token and waits for LOGIN_OK; false if the
// connection ended first.
func (f *hostileFleet) login(h *hostileConn, uid uint64) bool {
	l := proto.Login{Version: proto.Version, UID: uid, Token: f.signer.Mint(uid, time.Now().Add(time.Hour))}
	if !h.write(l.Append(nil)) {
		return false
	}
	select {
	case <-h.loggedIn:
		return true
	case <-h.ended:
		return false
	}
}

// abuse writes the logged-in classes' frames as fast as the socket takes them.
func (f *hostileFleet) abuse(class string, h *hostileConn, uid uint64, rng *rand.Rand) {
	var buf []byte
	var id uint64
	flood := make([]byte, h.maxPayload.Load())
	for {
		buf = buf[:0]
		switch class {
		case HostileSendFlood:
			id++
			s := proto.Send{ClientMsgID: id, To: f.victim(), Payload: flood}
			buf = s.Append(buf)
		case HostileSyncLoop:
			s := proto.Sync{}
			for range 64 {
				buf = s.Append(buf)
			}
		case HostileMadeUpRecipients:
			var payload [madeUpPayload]byte
			for range 32 {
				id++
				s := proto.Send{ClientMsgID: id, To: hostileMadeUpBase + rng.Uint64N(hostileMadeUpBase), Payload: payload[:]}
				buf = s.Append(buf)
			}
		}
		if !h.write(buf) {
			return
		}
		select {
		case <-h.ended:
			return
		default:
		}
	}
}

// readHostile reads a hostile connection's frames until it ends and says how it
// ended: the KICK's reason and code if one came, else eof, reset or error. It
// closes loggedIn on LOGIN_OK and counts ERROR frames by code.
func readHostile(h *hostileConn) (ending string, errs map[string]uint64) {
	errs = map[string]uint64{}
	r := bufio.NewReaderSize(h.nc, 4<<10)
	var hdr [proto.HeaderSize]byte
	body := make([]byte, 0, 1<<10)
	kick := ""
	loggedIn := false
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return endingOf(kick, err), errs
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 1 || n > 1<<24 {
			return cmp.Or(kick, EndError), errs
		}
		if cap(body) < n-1 {
			body = make([]byte, n-1)
		}
		body = body[:n-1]
		if _, err := io.ReadFull(r, body); err != nil {
			return endingOf(kick, err), errs
		}
		switch proto.Type(hdr[4]) {
		case proto.TypeLoginOK:
			var m proto.LoginOK
			if m.Decode(body) == nil && !loggedIn {
				if m.MaxPayload > 0 {
					h.maxPayload.Store(int64(m.MaxPayload))
				}
				loggedIn = true
				close(h.loggedIn)
			}
		case proto.TypeError:
			var m proto.Error
			if m.Decode(body) == nil {
				errs[m.Code.String()]++
			}
		case proto.TypeKick:
			var m proto.Kick
			if m.Decode(body) == nil && kick == "" {
				kick = fmt.Sprintf("KICK %v/%v", m.Reason, m.Code)
			}
		}
	}
}

// endingOf names how a read ended.
func endingOf(kick string, err error) string {
	switch {
	case kick != "":
		return kick
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return EndEOF
	case errors.Is(err, syscall.ECONNRESET):
		return EndReset
	}
	return EndError
}
