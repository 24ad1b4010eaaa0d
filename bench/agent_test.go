package main

import (
	"reflect"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	read := time.Unix(1000, 0)
	tests := []struct {
		name string
		line string
		ok   bool
		want logLine
	}{
		{
			name: "epoch seconds and duration in seconds (zap's production encoder)",
			line: `{"level":"info","ts":1700000000.25,"msg":"synced","op":"update","took":0.0125,"reason":"file"}`,
			ok:   true,
			want: logLine{Msg: "synced", Level: "info", Op: "update", Reason: "file", At: time.Unix(1700000000, 250000000), Took: 12500 * time.Microsecond},
		},
		{
			name: "ISO 8601 time and duration text",
			line: `{"level":"debug","ts":"2026-01-02T03:04:05.678Z","msg":"in sync; nothing changed","took":"85µs","reason":"resync"}`,
			ok:   true,
			want: logLine{Msg: "in sync; nothing changed", Level: "debug", Reason: "resync", At: time.Date(2026, 1, 2, 3, 4, 5, 678000000, time.UTC), Took: 85 * time.Microsecond},
		},
		{
			name: "no timestamp: the time it was read",
			line: `{"msg":"config loaded"}`,
			ok:   true,
			want: logLine{Msg: "config loaded", At: read},
		},
		{
			name: "a sync with a conntrack reconcile",
			line: `{"level":"info","ts":1700000000.5,"msg":"synced","took":0.002,"conntrack":{"changed_ranges":["10.0.0.0-10.0.0.15"],"changed_range_count":1,"examined":5010,"removed":10,"removed_by_protocol":{"udp":10},"took":0.0075}}`,
			ok:   true,
			want: logLine{Msg: "synced", Level: "info", At: time.Unix(1700000000, 500000000), Took: 2 * time.Millisecond, Conntrack: &ctLog{Took: 7500 * time.Microsecond, Examined: 5010, Removed: 10}},
		},
		{name: "not JSON", line: `panic: oops`, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseLogLine([]byte(tt.line), read)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			tt.want.Raw = tt.line
			// Float seconds carry about a microsecond of precision at today's epoch.
			if d := got.At.Sub(tt.want.At); d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("At = %v, want %v", got.At, tt.want.At)
			}
			got.At = tt.want.At
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLinePredicates(t *testing.T) {
	tests := []struct {
		l              logLine
		synced, resync bool
	}{
		{logLine{Msg: "synced", Reason: "file"}, true, false},
		{logLine{Msg: "in sync; nothing changed", Reason: "resync"}, false, true},
		{logLine{Msg: "first sync found the table in sync; nothing changed", Reason: "resync"}, false, true},
		{logLine{Msg: "in sync; nothing changed", Reason: "kernel|resync"}, false, true},
		{logLine{Msg: "in sync; nothing changed", Reason: "kernel"}, false, false},
		{logLine{Msg: "in sync; nothing changed"}, false, true},
		{logLine{Msg: "in sync"}, false, false},
		{logLine{Msg: "config loaded"}, false, false},
	}
	for _, tt := range tests {
		if got := isSynced(tt.l); got != tt.synced {
			t.Errorf("isSynced(%+v) = %v", tt.l, got)
		}
		if got := isResyncPass(tt.l); got != tt.resync {
			t.Errorf("isResyncPass(%+v) = %v", tt.l, got)
		}
	}
}
