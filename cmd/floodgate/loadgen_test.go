package main

import (
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/loadgen"
)

// The segment comes from the flag, else $FLOODGATE_SEGMENT, else an Indexed Job's
// completion index of $FLOODGATE_SEGMENTS, else the whole plan.
func TestSegmentOfFollowsFlagThenEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    string
		env     map[string]string
		want    loadgen.Segment
		wantErr bool
	}{
		{name: "nothing: the whole plan", want: loadgen.Segment{Index: 0, Count: 1}},
		{name: "the flag wins", flag: "2/5", env: map[string]string{envSegment: "1/3", envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 2, Count: 5}},
		{name: "FLOODGATE_SEGMENT before the job index", env: map[string]string{envSegment: "1/3", envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 1, Count: 3}},
		{name: "job index of FLOODGATE_SEGMENTS", env: map[string]string{envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 4, Count: 8}},
		{name: "job index without a count", env: map[string]string{envJobIndex: "4"}, wantErr: true},
		{name: "job index past the count", env: map[string]string{envJobIndex: "8", envSegments: "8"}, wantErr: true},
		{name: "count not a number", env: map[string]string{envJobIndex: "0", envSegments: "8/9"}, wantErr: true},
		{name: "bad FLOODGATE_SEGMENT", env: map[string]string{envSegment: "3"}, wantErr: true},
		{name: "bad flag", flag: "1/1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := segmentOf(tc.flag, func(k string) string { return tc.env[k] })
			if tc.wantErr {
				if err == nil {
					t.Fatalf("segment %v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("segment %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseStartAt(t *testing.T) {
	if at, err := parseStartAt(""); err != nil || !at.IsZero() {
		t.Fatalf("empty: %v, %v; want the zero time", at, err)
	}
	at, err := parseStartAt("2026-12-06T15:04:05.25Z")
	if want := time.Date(2026, 12, 6, 15, 4, 5, 250e6, time.UTC); err != nil || !at.Equal(want) {
		t.Fatalf("got %v, %v; want %v", at, err, want)
	}
	if _, err := parseStartAt("15:04"); err == nil {
		t.Fatal("a time without a date was accepted")
	}
}

// The plan the Kubernetes load Job runs (deploy/k8s/load/plan.json) is a valid
// plan once the agent adds the token key, which it holds none of itself.
func TestKubernetesLoadPlanIsValid(t *testing.T) {
	p, err := loadgen.ReadPlan("../../deploy/k8s/load/plan.json")
	if err != nil {
		t.Fatal(err)
	}
	if p.Secret != "" {
		t.Fatal("the plan holds a secret: it belongs in the Secret floodgate-keys")
	}
	p.Secret = strings.Repeat("k", 32)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}
