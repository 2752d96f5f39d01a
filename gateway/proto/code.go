package proto

import (
	"errors"
	"strconv"
)

// Reason is the reason byte of a KICK frame: the broad cause of the server
// closing the connection.
type Reason uint8

// Kick reasons.
const (
	ReasonSlow     Reason = 1 // the client did not keep up with its pushes
	ReasonBusy     Reason = 2 // the server is full
	ReasonDrain    Reason = 3 // the server is draining connections; reconnect elsewhere
	ReasonAuth     Reason = 4 // the login token was rejected
	ReasonIdle     Reason = 5 // no inbound frame within the idle timeout
	ReasonProtocol Reason = 6 // the client violated the protocol
	ReasonShutdown Reason = 7 // the server is shutting down
	ReasonReplaced Reason = 8 // a newer session for the same user replaced this one
	ReasonPolicy   Reason = 9 // the client broke a server policy (rates, connection caps)
)

// String returns the protocol name of r, such as "SLOW", or "Reason(9)" for
// an undefined reason.
func (r Reason) String() string {
	switch r {
	case ReasonSlow:
		return "SLOW"
	case ReasonBusy:
		return "BUSY"
	case ReasonDrain:
		return "DRAIN"
	case ReasonAuth:
		return "AUTH"
	case ReasonIdle:
		return "IDLE"
	case ReasonProtocol:
		return "PROTOCOL"
	case ReasonShutdown:
		return "SHUTDOWN"
	case ReasonReplaced:
		return "REPLACED"
	case ReasonPolicy:
		return "POLICY"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Code is a protocol error code, carried by ERROR and KICK frames. Codes are
// grouped in classes by range: 1–19 protocol violations and 20–39
// authentication failures (both fatal), 40–59 request errors (non-fatal,
// sent in ERROR), 60–79 server-initiated kicks.
type Code uint16

// Protocol violations; fatal, sent in a KICK with ReasonProtocol.
const (
	CodeFrameTooLarge      Code = 1 // length exceeds the maximum frame size
	CodeBadLength          Code = 2 // length is 0
	CodeUnknownType        Code = 3 // undefined type byte
	CodeMalformed          Code = 4 // body does not match its type's layout
	CodeTruncated          Code = 5 // stream ended inside a frame
	CodeNotLoggedIn        Code = 6 // a frame other than LOGIN before LOGIN_OK
	CodeAlreadyLoggedIn    Code = 7 // a second LOGIN
	CodeUnexpectedFrame    Code = 8 // a server-to-client type sent by a client
	CodeUnsupportedVersion Code = 9 // LOGIN with a protocol version other than Version or VersionTrace
)

// Authentication failures; fatal, sent in a KICK with ReasonAuth.
const (
	CodeBadToken     Code = 20 // token malformed or its MAC is wrong
	CodeTokenExpired Code = 21 // token expiry is not in the future
	CodeUIDMismatch  Code = 22 // token's uid differs from the LOGIN uid
)

// Request errors; non-fatal, sent in an ERROR that refers to one request.
const (
	CodeBadRecipient    Code = 40 // SEND to a uid that cannot receive messages
	CodePayloadTooLarge Code = 41 // SEND payload exceeds the payload limit
	CodeUnavailable     Code = 42 // temporarily unable to serve; retry later
	CodeRateLimited     Code = 43 // the client exceeded its rate; slow down
	CodeRecipientFull   Code = 44 // the recipient's storage quota is used up; not stored
)

// Server-initiated kicks; each is sent with the matching Reason.
const (
	CodeSlowConsumer    Code = 60 // ReasonSlow
	CodeServerFull      Code = 61 // ReasonBusy
	CodeIdleTimeout     Code = 62 // ReasonIdle
	CodeDraining        Code = 63 // ReasonDrain
	CodeShuttingDown    Code = 64 // ReasonShutdown
	CodeSessionReplaced Code = 65 // ReasonReplaced
	// CodeBackendUnavailable (ReasonBusy): the gateway cannot reach the session
	// directory or the message store, so it cannot serve this connection now
	// (a LOGIN it cannot register, a SEND whose outcome it cannot learn).
	CodeBackendUnavailable Code = 66
	// CodeLoginTimeout (ReasonIdle): no LOGIN arrived within the login deadline
	// counted from the connection's accept.
	CodeLoginTimeout Code = 67
	// CodeRateExceeded (ReasonPolicy): the client kept exceeding its rate limits
	// after being answered RATE_LIMITED.
	CodeRateExceeded Code = 68
	// CodeTooManyConnections (ReasonPolicy): the client's address holds as many
	// connections as the server allows one address.
	CodeTooManyConnections Code = 69
	// CodeIsolated (ReasonDrain): the gateway is cut off from the session
	// directory while other gateways are not, so it cannot keep its sessions valid:
	// it moves its clients to them.
	CodeIsolated Code = 70
)

// String returns the protocol name of c, such as "FRAME_TOO_LARGE", or
// "Code(99)" for an undefined code.
func (c Code) String() string {
	switch c {
	case CodeFrameTooLarge:
		return "FRAME_TOO_LARGE"
	case CodeBadLength:
		return "BAD_LENGTH"
	case CodeUnknownType:
		return "UNKNOWN_TYPE"
	case CodeMalformed:
		return "MALFORMED"
	case CodeTruncated:
		return "TRUNCATED"
	case CodeNotLoggedIn:
		return "NOT_LOGGED_IN"
	case CodeAlreadyLoggedIn:
		return "ALREADY_LOGGED_IN"
	case CodeUnexpectedFrame:
		return "UNEXPECTED_FRAME"
	case CodeUnsupportedVersion:
		return "UNSUPPORTED_VERSION"
	case CodeBadToken:
		return "BAD_TOKEN"
	case CodeTokenExpired:
		return "TOKEN_EXPIRED"
	case CodeUIDMismatch:
		return "UID_MISMATCH"
	case CodeBadRecipient:
		return "BAD_RECIPIENT"
	case CodePayloadTooLarge:
		return "PAYLOAD_TOO_LARGE"
	case CodeUnavailable:
		return "UNAVAILABLE"
	case CodeRateLimited:
		return "RATE_LIMITED"
	case CodeRecipientFull:
		return "RECIPIENT_FULL"
	case CodeSlowConsumer:
		return "SLOW_CONSUMER"
	case CodeServerFull:
		return "SERVER_FULL"
	case CodeIdleTimeout:
		return "IDLE_TIMEOUT"
	case CodeDraining:
		return "DRAINING"
	case CodeShuttingDown:
		return "SHUTTING_DOWN"
	case CodeSessionReplaced:
		return "SESSION_REPLACED"
	case CodeBackendUnavailable:
		return "BACKEND_UNAVAILABLE"
	case CodeLoginTimeout:
		return "LOGIN_TIMEOUT"
	case CodeRateExceeded:
		return "RATE_EXCEEDED"
	case CodeTooManyConnections:
		return "TOO_MANY_CONNECTIONS"
	case CodeIsolated:
		return "ISOLATED"
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// KickReason reports the Reason a KICK carrying c is sent with: ReasonProtocol
// for the protocol class (1–19), ReasonAuth for the auth class (20–39), the
// matching reason for the defined server kick codes (60–70), and 0 for every
// other code, which is not fatal.
func (c Code) KickReason() Reason {
	switch {
	case c >= 1 && c <= 19:
		return ReasonProtocol
	case c >= 20 && c <= 39:
		return ReasonAuth
	}
	switch c {
	case CodeSlowConsumer:
		return ReasonSlow
	case CodeServerFull:
		return ReasonBusy
	case CodeIdleTimeout:
		return ReasonIdle
	case CodeDraining, CodeIsolated:
		return ReasonDrain
	case CodeShuttingDown:
		return ReasonShutdown
	case CodeSessionReplaced:
		return ReasonReplaced
	case CodeBackendUnavailable:
		return ReasonBusy
	case CodeLoginTimeout:
		return ReasonIdle
	case CodeRateExceeded, CodeTooManyConnections:
		return ReasonPolicy
	}
	return 0
}

// Fatal reports whether c ends the connection, i.e. is sent in a KICK rather
// than an ERROR.
func (c Code) Fatal() bool { return c.KickReason() != 0 }

// CodeError is an error carrying a protocol Code. The package's sentinel
// errors are *CodeError values; match them with [errors.Is] and extract the
// code of any, possibly wrapped, error with [CodeOf]. Other packages may
// create their own, for example for request errors.
type CodeError struct {
	Code Code
	Msg  string // description; "proto: " and the code's name if empty
}

// Error returns e.Msg, or a description derived from e.Code if Msg is empty.
func (e *CodeError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return "proto: " + e.Code.String()
}

// Sentinel errors. Each carries the Code a server reports for it.
var (
	ErrFrameTooLarge      = &CodeError{CodeFrameTooLarge, "proto: frame too large"}                   // length > max frame
	ErrZeroLength         = &CodeError{CodeBadLength, "proto: zero frame length"}                     // length == 0
	ErrUnknownType        = &CodeError{CodeUnknownType, "proto: unknown frame type"}                  // undefined type byte
	ErrMalformed          = &CodeError{CodeMalformed, "proto: malformed frame"}                       // body does not fit its type
	ErrTruncated          = &CodeError{CodeTruncated, "proto: truncated frame"}                       // input ends inside a frame
	ErrUnsupportedVersion = &CodeError{CodeUnsupportedVersion, "proto: unsupported protocol version"} // LOGIN version not Version or VersionTrace
	ErrBadToken           = &CodeError{CodeBadToken, "proto: bad token"}                              // malformed token or wrong MAC
	ErrTokenExpired       = &CodeError{CodeTokenExpired, "proto: token expired"}                      // expiry <= now
	ErrUIDMismatch        = &CodeError{CodeUIDMismatch, "proto: token uid mismatch"}                  // token for another uid
)

// CodeOf returns the Code of the first *CodeError in err's tree, or 0 if
// there is none.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*CodeError](err); ok {
		return e.Code
	}
	return 0
}
