package reactor

import (
	"reflect"
	"testing"
)

// Add must sum every counter of Stats (MaxConns excepted: it takes the larger): a
// field added to Stats and forgotten in Add would read zero for a gateway's second
// port.
func TestStatsAddSumsEveryField(t *testing.T) {
	var one Stats
	v := reflect.ValueOf(&one).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Array:
			for j := range f.Len() {
				f.Index(j).SetUint(1)
			}
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.Uint64:
			f.SetUint(1)
		default:
			t.Fatalf("Stats.%s: kind %v not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	sum := one
	sum.Add(one)
	s := reflect.ValueOf(sum)
	for i := range s.NumField() {
		f, name := s.Field(i), s.Type().Field(i).Name
		if f.Kind() == reflect.Array {
			for j := range f.Len() {
				if f.Index(j).Uint() != 2 {
					t.Errorf("Stats.%s[%d] = %d after Add, want 2", name, j, f.Index(j).Uint())
				}
			}
			continue
		}
		want := int64(2)
		if name == "MaxConns" { // the larger, not the sum: one process's file limit
			want = 1
		}
		if fmtInt(f) != want {
			t.Errorf("Stats.%s = %d after Add, want %d", name, fmtInt(f), want)
		}
	}
}

func fmtInt(v reflect.Value) int64 {
	if v.CanInt() {
		return v.Int()
	}
	return int64(v.Uint())
}
