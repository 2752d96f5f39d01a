package ws

// CutStream finds the next unit of a WebSocket connection's input at b: the opening
// handshake while b starts with "GET ", otherwise one client frame (FrameSize with
// maxPayload). It returns the unit's full size once it is known — possibly more than
// len(b) for a frame — or 0 while more bytes are needed, or an error: a
// *HandshakeError for a header block over MaxRequest, an *Error for a frame header
// no client may send. It has the contract of the reactor's Framer, so a reactor on
// the WebSocket port can cut its input unchanged and hand each unit to the handler,
// which parses the handshake with ParseUpgrade and the frames with a Decoder.
//
// The two kinds cannot be confused: 'G' (0x47) as a frame's first byte has RSV1 set,
// which FrameSize refuses. Which kind is legal when — the handshake once, first;
// frames only after it — is the per-connection state the handler keeps.
func CutStream(b []byte, maxPayload int) (int, error) {
	if len(b) > 0 && b[0] == 'G' {
		return headerBlockSize(b, MaxRequest, errHeaderTooLong)
	}
	return FrameSize(b, maxPayload)
}
