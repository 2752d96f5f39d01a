package proto

import (
	"testing"
	"time"
)

func TestZeroAllocs(t *testing.T) {
	type allocCase struct {
		name string
		fn   func()
	}
	stream, frames := testStream()
	buf := make([]byte, 0, 2*DefaultMaxFrame)
	var sink []byte
	var err error

	tests := []allocCase{
		{"Split", func() { _, err = Split(stream, DefaultMaxFrame) }},
		{"Split/partial", func() { _, err = Split(stream[:7], DefaultMaxFrame) }},
		{"Split/error", func() { _, err = Split([]byte{0, 0, 0, 0}, DefaultMaxFrame) }},
		{"FrameSize/partial", func() { _, err = FrameSize(stream[:7], DefaultMaxFrame) }},
		{"ParseFrame", func() { _, err = ParseFrame(frames[0]) }},
		{"AppendKick", func() { sink = AppendKick(buf[:0], ReasonProtocol, CodeMalformed, 0, "bad frame") }},
		{"AppendError", func() { sink = AppendError(buf[:0], CodeBadRecipient, 1, "no such user") }},
	}
	for _, rt := range roundTrips() {
		f, perr := ParseFrame(rt.msg.Append(nil))
		if perr != nil {
			t.Fatal(perr)
		}
		m := newMessage(rt.typ)
		tests = append(tests,
			allocCase{"Decode/" + rt.name, func() { err = m.Decode(f.Body) }},
			allocCase{"Append/" + rt.name, func() { sink = rt.msg.Append(buf[:0]) }},
		)
	}
	if !raceEnabled { // the race detector makes sync.Pool drop items
		s := newTestSigner(t, []byte(testSecret))
		now := time.Unix(1767225600, 0)
		tok := s.Mint(42, now.Add(time.Hour))
		tests = append(tests, allocCase{"Verify", func() { err = s.Verify(tok, 42, now) }})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
	_, _ = sink, err
}
