package proto

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code   Code
		value  uint16
		name   string
		reason Reason
	}{
		{CodeFrameTooLarge, 1, "FRAME_TOO_LARGE", ReasonProtocol},
		{CodeBadLength, 2, "BAD_LENGTH", ReasonProtocol},
		{CodeUnknownType, 3, "UNKNOWN_TYPE", ReasonProtocol},
		{CodeMalformed, 4, "MALFORMED", ReasonProtocol},
		{CodeTruncated, 5, "TRUNCATED", ReasonProtocol},
		{CodeNotLoggedIn, 6, "NOT_LOGGED_IN", ReasonProtocol},
		{CodeAlreadyLoggedIn, 7, "ALREADY_LOGGED_IN", ReasonProtocol},
		{CodeUnexpectedFrame, 8, "UNEXPECTED_FRAME", ReasonProtocol},
		{CodeUnsupportedVersion, 9, "UNSUPPORTED_VERSION", ReasonProtocol},
		{CodeBadToken, 20, "BAD_TOKEN", ReasonAuth},
		{CodeTokenExpired, 21, "TOKEN_EXPIRED", ReasonAuth},
		{CodeUIDMismatch, 22, "UID_MISMATCH", ReasonAuth},
		{CodeBadRecipient, 40, "BAD_RECIPIENT", 0},
		{CodePayloadTooLarge, 41, "PAYLOAD_TOO_LARGE", 0},
		{CodeUnavailable, 42, "UNAVAILABLE", 0},
		{CodeRateLimited, 43, "RATE_LIMITED", 0},
		{CodeRecipientFull, 44, "RECIPIENT_FULL", 0},
		{CodeSlowConsumer, 60, "SLOW_CONSUMER", ReasonSlow},
		{CodeServerFull, 61, "SERVER_FULL", ReasonBusy},
		{CodeIdleTimeout, 62, "IDLE_TIMEOUT", ReasonIdle},
		{CodeDraining, 63, "DRAINING", ReasonDrain},
		{CodeShuttingDown, 64, "SHUTTING_DOWN", ReasonShutdown},
		{CodeSessionReplaced, 65, "SESSION_REPLACED", ReasonReplaced},
		{CodeBackendUnavailable, 66, "BACKEND_UNAVAILABLE", ReasonBusy},
		{CodeLoginTimeout, 67, "LOGIN_TIMEOUT", ReasonIdle},
		{CodeRateExceeded, 68, "RATE_EXCEEDED", ReasonPolicy},
		{CodeTooManyConnections, 69, "TOO_MANY_CONNECTIONS", ReasonPolicy},
		{CodeIsolated, 70, "ISOLATED", ReasonDrain},
		// Undefined codes: classified by range where the class is uniform.
		{0, 0, "Code(0)", 0},
		{10, 10, "Code(10)", ReasonProtocol},
		{23, 23, "Code(23)", ReasonAuth},
		{45, 45, "Code(45)", 0},
		{71, 71, "Code(71)", 0},
		{65535, 65535, "Code(65535)", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if uint16(tc.code) != tc.value {
				t.Errorf("value = %d, want %d", tc.code, tc.value)
			}
			if got := tc.code.String(); got != tc.name {
				t.Errorf("String() = %q, want %q", got, tc.name)
			}
			if got := tc.code.KickReason(); got != tc.reason {
				t.Errorf("KickReason() = %v, want %v", got, tc.reason)
			}
			if got := tc.code.Fatal(); got != (tc.reason != 0) {
				t.Errorf("Fatal() = %v", got)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	names := []string{"SLOW", "BUSY", "DRAIN", "AUTH", "IDLE", "PROTOCOL", "SHUTDOWN", "REPLACED", "POLICY"}
	consts := []Reason{ReasonSlow, ReasonBusy, ReasonDrain, ReasonAuth, ReasonIdle, ReasonProtocol, ReasonShutdown, ReasonReplaced, ReasonPolicy}
	for i, name := range names {
		if r := consts[i]; r != Reason(i+1) || r.String() != name {
			t.Errorf("reason %d = %d %q, want %d %q", i, r, r, i+1, name)
		}
	}
	for _, r := range []Reason{0, 10, 255} {
		if got, want := r.String(), fmt.Sprintf("Reason(%d)", r); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestCodeOf(t *testing.T) {
	sentinels := []struct {
		err  *CodeError
		code Code
	}{
		{ErrFrameTooLarge, CodeFrameTooLarge},
		{ErrZeroLength, CodeBadLength},
		{ErrUnknownType, CodeUnknownType},
		{ErrMalformed, CodeMalformed},
		{ErrTruncated, CodeTruncated},
		{ErrUnsupportedVersion, CodeUnsupportedVersion},
		{ErrBadToken, CodeBadToken},
		{ErrTokenExpired, CodeTokenExpired},
		{ErrUIDMismatch, CodeUIDMismatch},
	}
	for _, s := range sentinels {
		t.Run(s.code.String(), func(t *testing.T) {
			wrapped := fmt.Errorf("conn 7: %w", fmt.Errorf("read: %w", s.err))
			joined := errors.Join(io.EOF, s.err)
			for _, err := range []error{s.err, wrapped, joined} {
				if got := CodeOf(err); got != s.code {
					t.Errorf("CodeOf(%v) = %v, want %v", err, got, s.code)
				}
			}
			if !errors.Is(wrapped, s.err) {
				t.Errorf("errors.Is(wrapped, sentinel) = false")
			}
		})
	}
	for _, err := range []error{nil, io.EOF, errors.New("x"), fmt.Errorf("y: %w", io.ErrUnexpectedEOF)} {
		if got := CodeOf(err); got != 0 {
			t.Errorf("CodeOf(%v) = %v, want 0", err, got)
		}
	}
	custom := &CodeError{Code: CodeRateLimited}
	if got := CodeOf(fmt.Errorf("send: %w", custom)); got != CodeRateLimited {
		t.Errorf("CodeOf(custom) = %v", got)
	}
	if got, want := custom.Error(), "proto: RATE_LIMITED"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
