package keys

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := func(c byte) []byte { return bytes.Repeat([]byte{c}, MinLen) }
	for _, tc := range []struct {
		name string
		ks   []Named
		want string // "" = valid; else a substring of the error
	}{
		{"one long key", []Named{{"A", long('a')}}, ""},
		{"two distinct keys", []Named{{"A", long('a')}, {"B", long('b')}}, ""},
		{"short key names itself", []Named{{"A", long('a')}, {"B", []byte("short")}}, "B: the key is 5 bytes, need at least 32"},
		{"empty key", []Named{{"A", nil}}, "A: the key is 0 bytes"},
		{"equal keys name both", []Named{{"A", long('a')}, {"B", long('b')}, {"C", long('a')}}, "A and C are the same key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.ks...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestGenerateIsLongEnoughAndFresh(t *testing.T) {
	a, b := Generate(), Generate()
	if err := Validate(Named{"a", a}, Named{"b", b}); err != nil {
		t.Fatal(err)
	}
}
