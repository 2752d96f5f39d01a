package units

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"512B", 512, false},
		{"64KiB", 64 << 10, false},
		{"1MiB", 1 << 20, false},
		{" 1.5 GiB ", 3 << 29, false},
		{"64KB", 64000, false},
		{"2MB", 2e6, false},
		{"1.5B", 0, true},
		{"-1KiB", 0, true},
		{"1mb", 0, true},
		{"KiB", 0, true},
		{"", 0, true},
		{"1e30TiB", 0, true},
		{"NaN", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestSizeStringRoundTrips(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, 1024, 64 << 10, 1<<20 + 1, 3 << 30} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("%d -> %q -> %v, %v", int64(s), s.String(), back, err)
		}
	}
}
