package proto

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// message is what every frame body type implements. It exists only in tests:
// the package API is concrete types.
type message interface {
	Decode(body []byte) error
	Append(dst []byte) []byte
	Size() int
}

// newMessage returns a zero message of type t, or nil for an unknown type.
func newMessage(t Type) message {
	switch t {
	case TypeLogin:
		return new(Login)
	case TypeLoginOK:
		return new(LoginOK)
	case TypeError:
		return new(Error)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeSend:
		return new(Send)
	case TypeSendAck:
		return new(SendAck)
	case TypePush:
		return new(Push)
	case TypePushAck:
		return new(PushAck)
	case TypeSync:
		return new(Sync)
	case TypeSyncEnd:
		return new(SyncEnd)
	case TypeKick:
		return new(Kick)
	case TypeSendTraced:
		return new(SendTraced)
	case TypePushTraced:
		return new(PushTraced)
	}
	return nil
}

// unhex decodes hex that may contain spaces, newlines and '|' separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// frameOf builds a frame with a correct length prefix around type and body.
func frameOf(t Type, body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	f = append(f, byte(t))
	return append(f, body...)
}
