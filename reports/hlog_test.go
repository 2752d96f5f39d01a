package reports

import (
	"strings"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
)

// encodedHist returns a histogram of the given values in the log's compressed
// base64 form.
func encodedHist(t testing.TB, vs ...int64) string {
	t.Helper()
	h := loadgen.NewHistogram()
	for _, v := range vs {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := h.EncodeV2()
	if err != nil {
		t.Fatal(err)
	}
	return string(enc)
}

// An interval line has an optional tag and four fields; each bad field is an
// error naming it.
func TestParseIntervalLine(t *testing.T) {
	t.Parallel()
	hist := encodedHist(t, 1500, 2500)
	ri, err := parseIntervalLine("Tag=push,3.500,1.000,0.0025," + hist)
	if err != nil {
		t.Fatal(err)
	}
	if ri.tag != "push" || ri.relStart != 3.5 || ri.width != 1 || ri.h.TotalCount() != 2 {
		t.Fatalf("parsed %+v (%d samples)", ri, ri.h.TotalCount())
	}
	if ri, err := parseIntervalLine("0.5,2,0.0025," + hist); err != nil || ri.tag != "" || ri.relStart != 0.5 || ri.width != 2 {
		t.Fatalf("an untagged line: %+v, %v", ri, err)
	}
	for _, tc := range []struct {
		line, want string
	}{
		{"Tag=push", "without fields after its tag"},
		{"1,2,3", "got 3 fields"},
		{"Tag=push,1,2", "got 2 fields"},
		{"x,1,2," + hist, `interval start "x"`},
		{"1,y,2," + hist, `interval length "y"`},
		{"1,1,2,not-a-histogram", "interval histogram"},
		{"1,1,2,", "interval histogram"},
	} {
		if _, err := parseIntervalLine(tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.line, err, tc.want)
		}
	}
}

// The log's headers set its base: a base time (whole seconds or not), else the
// start time when the stamps are relative (more than a year before it), else
// none (absolute stamps). Comments, blank lines and the legend are skipped; a
// bad header or interval is an error with its line number.
func TestParseHlogBaseAndErrors(t *testing.T) {
	t.Parallel()
	hist := encodedHist(t, 1000)
	legend := `"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`
	tests := []struct {
		name      string
		log       string
		baseMs    int64
		precise   bool
		intervals int
		err       string
	}{
		{"base time in whole seconds", "#[StartTime: 1700000000.250 (seconds since epoch)]\n#[BaseTime: 1700000000 (seconds since epoch)]\n" +
			legend + "\n\nTag=push,1.000,1.000,0.001," + hist + "\n", 1_700_000_000_000, false, 1, ""},
		{"base time with milliseconds", "#[BaseTime: 1700000000.125 (seconds since epoch)]\n1,1,0.001," + hist + "\n", 1_700_000_000_125, true, 1, ""},
		{"relative stamps without a base", "#[StartTime: 1700000000.500 (seconds since epoch)]\n2,1,0.001," + hist + "\n", 1_700_000_000_500, true, 1, ""},
		{"absolute stamps without a base", "#[StartTime: 1700000000 (seconds since epoch)]\n1700000002,1,0.001," + hist + "\n", 0, true, 1, ""},
		{"no headers", "# a comment\n3,1,0.001," + hist + "\n", 0, true, 1, ""},
		{"empty", "", 0, true, 0, ""},
		{"bad start time", "#[StartTime: soon (seconds since epoch)]\n", 0, false, 0, `line 1: start time "soon"`},
		{"bad base time", "# ok\n#[BaseTime: 17e (seconds)]\n", 0, false, 0, `line 2: base time "17e"`},
		{"bad interval", "#[BaseTime: 1700000000 (seconds since epoch)]\n\n1,1,0.001,%%%\n", 0, false, 0, "line 3: interval histogram"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lg, err := parseHlog(strings.NewReader(tc.log))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lg.baseMs != tc.baseMs || lg.precise != tc.precise || len(lg.raw) != tc.intervals {
				t.Fatalf("base %d precise %v, %d intervals; want %d %v %d", lg.baseMs, lg.precise, len(lg.raw), tc.baseMs, tc.precise, tc.intervals)
			}
		})
	}
}

// Any log either parses, with every interval holding a histogram, or is an
// error: never a panic.
func FuzzParseHlog(f *testing.F) {
	hist := encodedHist(f, 1000, 2000, 3_000_000)
	for _, seed := range []string{
		"#[StartTime: 1700000000.337 (seconds since epoch), 2023-11-14T22:13:20Z]\n#[BaseTime: 1700000000.337 (seconds since epoch)]\nTag=push,1.000,1.000,0.0015," + hist + "\n",
		"1,1,0.001," + hist + "\n2,1,0.001," + hist + "\n",
		"#[StartTime: x]\n", "Tag=,,,,\n", "Tag=push,1,1,1,HISTFAAAA\n", "\"legend\"\n#\n\n", "1,1,1," + hist[:len(hist)/2] + "\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, log string) {
		lg, err := parseHlog(strings.NewReader(log))
		if err != nil {
			return
		}
		for i, ri := range lg.raw {
			if ri.h == nil {
				t.Fatalf("interval %d parsed without a histogram", i)
			}
		}
		lg.intervals() // stamps made absolute, whatever their values
	})
}
