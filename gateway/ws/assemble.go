package ws

import "unicode/utf8"

// assembler is the part of a decoder that does not depend on the direction of the
// frames: the order of data frames, the size limit, the fragments of a message and
// the checks of a whole frame's payload. Decoder and ClientDecoder each hold one and
// differ only in whether the frames are masked: a client's are, a server's are not.
//
// Between messages an assembler holds no buffer: only during a fragmented message
// does it keep the fragments so far (at most the limit given to decode).
type assembler struct {
	frag    bool   // inside a fragmented message
	fragOp  Opcode // its opcode, OpText or OpBinary
	pending []byte // its payload so far
}

// decode parses the frame at the start of b — a client's, masked, or a server's,
// unmasked, as masked says — with limit the largest message payload, summed over
// fragments (0: unlimited), judged on the header before any payload is kept. It
// returns n == 0 and a nil error while b holds less than the whole frame, having
// changed neither b nor the assembler. Otherwise it consumes exactly that frame:
// it unmasks the payload in place if masked — the one write to b, once, on the
// frame it consumes — and returns a control frame or a one-frame message with
// Payload aliasing b, or keeps a fragment (Op == OpContinuation), or returns the
// message a final fragment completes, in a buffer it then gives up.
func (a *assembler) decode(b []byte, masked bool, limit int) (m Message, n int, err error) {
	h, ok, err := parseFrameHeader(b, masked)
	if err != nil || !ok {
		return m, 0, err
	}
	if h.op == OpContinuation && !a.frag {
		return m, 0, ErrUnexpectedCont
	}
	if (h.op == OpText || h.op == OpBinary) && a.frag {
		return m, 0, ErrExpectedCont
	}
	if limit > 0 && !h.op.IsControl() {
		held := uint64(0)
		if h.op == OpContinuation {
			held = uint64(len(a.pending))
		}
		if h.length > uint64(limit) || held+h.length > uint64(limit) {
			return m, 0, ErrMessageTooBig
		}
	}
	if h.length > uint64(len(b)-h.hlen) {
		return m, 0, nil // incomplete: nothing consumed, nothing unmasked
	}
	n = h.hlen + int(h.length)
	p := b[h.hlen:n]
	if masked {
		unmask(p, h.mask)
	}
	switch h.op {
	case OpPing, OpPong:
		return Message{Op: h.op, Payload: p}, n, nil
	case OpClose:
		m, err = parseClose(p)
		return m, n, err
	case OpText, OpBinary:
		if h.fin {
			if h.op == OpText && !utf8.Valid(p) {
				return m, n, ErrInvalidUTF8
			}
			return Message{Op: h.op, Payload: p}, n, nil
		}
		a.frag, a.fragOp = true, h.op
		a.pending = append(a.pending[:0], p...)
		return m, n, nil
	}
	// OpContinuation of a fragmented message.
	a.pending = append(a.pending, p...)
	if !h.fin {
		return m, n, nil
	}
	m = Message{Op: a.fragOp, Payload: a.pending}
	a.frag, a.fragOp, a.pending = false, 0, nil
	if m.Op == OpText && !utf8.Valid(m.Payload) {
		return Message{}, n, ErrInvalidUTF8
	}
	return m, n, nil
}
