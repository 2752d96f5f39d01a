package main

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestListFlag(t *testing.T) {
	l := list([]int{1, 2}, strconv.Atoi)
	if l.String() != "1,2" {
		t.Errorf("default = %q", l.String())
	}
	if err := l.Set("50000, 100000"); err != nil || !slices.Equal(l.v, []int{50000, 100000}) {
		t.Errorf("Set = %v, %v", l.v, err)
	}
	if err := l.Set("1,x"); err == nil {
		t.Error("Set accepted x")
	}
	s := list(nil, parseSize)
	if err := s.Set("64,1KiB"); err != nil || !slices.Equal(s.v, []int{64, 1024}) {
		t.Errorf("sizes = %v, %v", s.v, err)
	}
}

// TestBenchRejectsBadFlags: a bad selection fails before any process starts.
func TestBenchRejectsBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	code := dispatch([]string{"bench", "-out", t.TempDir(), "-servers", "floodgate,bogus", "-tests", "echo"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `unknown server \"bogus\"`) {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := dispatch([]string{"bench", "client", "-conns", "1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no targets") {
		t.Errorf("client without targets: code %d, stderr %q", code, errb.String())
	}
}
