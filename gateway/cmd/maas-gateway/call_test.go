package main

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGuardAnswersAPanicWithInternal(t *testing.T) {
	var out bytes.Buffer
	c := &call{g: &Gateway{log: NewLogger(&out, "INFO", "json")}, method: "/a.v1.B/C", requestID: "req-1"}
	err := c.guard(func() error { panic("boom") })
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "quote request id req-1") ||
		strings.Contains(err.Error(), "boom") {
		t.Fatalf("answer: %v", err)
	}
	if !strings.Contains(out.String(), `"error": "boom"`) || !strings.Contains(out.String(), "goroutine") {
		t.Fatalf("log: %s", out.String())
	}
}

func TestRequestIDsDoNotRepeat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := newRequestID()
		if len(id) != 16 || seen[id] {
			t.Fatalf("id %q (repeat: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
