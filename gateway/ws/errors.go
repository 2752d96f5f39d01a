package ws

import (
	"errors"
	"fmt"
)

// Close status codes (RFC 6455 §7.4.1) the codec sends or reports.
const (
	CloseNormal          uint16 = 1000 // the purpose of the connection is fulfilled
	CloseGoingAway       uint16 = 1001 // server shutting down or page left
	CloseProtocolError   uint16 = 1002 // a frame broke RFC 6455
	CloseUnsupportedData uint16 = 1003 // a data type the endpoint cannot accept
	CloseNoStatus        uint16 = 1005 // reported for a close frame with no body; never sent
	CloseInvalidPayload  uint16 = 1007 // a text message or close reason that is not UTF-8
	ClosePolicyViolation uint16 = 1008 // generic policy violation
	CloseTooBig          uint16 = 1009 // a message over the decoder's MaxMessage
	CloseInternalError   uint16 = 1011 // the server hit an unexpected condition
	CloseTryAgainLater   uint16 = 1013 // the server is overloaded: reconnect later (IANA registry)
)

// Error is a violation found in a peer's frames. Code is the close status the
// server should send in its close frame before closing the connection (RFC 6455
// §7.1.7, "Fail the WebSocket Connection").
type Error struct {
	Code   uint16 // CloseProtocolError, CloseInvalidPayload or CloseTooBig
	Reason string // short, ASCII, fits a close frame
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("ws: %s (close %d)", e.Reason, e.Code) }

// CloseCode returns the close status to send for err: the Code of an *Error in its
// chain, or CloseInternalError for any other non-nil error, or CloseNormal for nil.
func CloseCode(err error) uint16 {
	if err == nil {
		return CloseNormal
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CloseInternalError
}

// The frame errors are values, so that decoding a bad frame does not allocate and
// tests can compare with errors.Is.
var (
	ErrUnmasked        = &Error{CloseProtocolError, "client frame not masked"}
	ErrReservedBits    = &Error{CloseProtocolError, "reserved bits set"}
	ErrUnknownOpcode   = &Error{CloseProtocolError, "unknown opcode"}
	ErrLengthMSB       = &Error{CloseProtocolError, "64-bit length with the most significant bit set"}
	ErrControlTooLong  = &Error{CloseProtocolError, "control frame payload over 125 bytes"}
	ErrControlFragment = &Error{CloseProtocolError, "fragmented control frame"}
	ErrUnexpectedCont  = &Error{CloseProtocolError, "continuation frame without a message to continue"}
	ErrExpectedCont    = &Error{CloseProtocolError, "new data frame inside a fragmented message"}
	ErrCloseLength     = &Error{CloseProtocolError, "close frame body of one byte"}
	ErrCloseCode       = &Error{CloseProtocolError, "invalid close code"}
	ErrInvalidUTF8     = &Error{CloseInvalidPayload, "text message is not valid UTF-8"}
	ErrInvalidReason   = &Error{CloseInvalidPayload, "close reason is not valid UTF-8"}
	ErrMessageTooBig   = &Error{CloseTooBig, "message over the size limit"}
	ErrNotOneFrame     = &Error{CloseProtocolError, "not exactly one whole frame"}
)
