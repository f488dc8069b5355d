package main

import (
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestShortenedCutsOnARuneBoundary(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 5, "abcde..."},
		{"ééééé", 3, "é..."}, // é is two bytes: byte 3 is inside the second one
		{"", 0, ""},
	}
	for _, c := range cases {
		if got := shortened(c.in, c.n); got != c.want {
			t.Errorf("shortened(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestRelayErrorNamesTheUpstreamForStatusesItNeverSent(t *testing.T) {
	up := &Upstream{Name: "music-generator", Target: "10.0.0.7:50054", log: NewLogger(io.Discard, "info", "json")}
	upstreamTrailer := metadata.Pairs("x-request-id", "abc")
	cases := []struct {
		name    string
		err     error
		trailer metadata.MD
		code    codes.Code
		message string
	}{
		{"no replica connected", status.Error(codes.Unavailable, "connection refused"), nil, codes.Unavailable,
			"music-generator is unreachable; retry later"},
		{"an answer it could not read", status.Error(codes.Internal, "stream terminated by RST_STREAM with error code: INTERNAL_ERROR"),
			nil, codes.Unavailable, "the answer of music-generator could not be read (stream terminated by RST_STREAM"},
		{"the upstream's own INTERNAL", status.Error(codes.Internal, "internal error; quote request id abc"),
			upstreamTrailer, codes.Internal, "internal error; quote request id abc"},
		{"the upstream's own status", status.Error(codes.InvalidArgument, "style: unknown"), upstreamTrailer,
			codes.InvalidArgument, "style: unknown"},
	}
	for _, c := range cases {
		var sent metadata.MD
		cl := &call{requestID: "abc", setTrailerFn: func(md metadata.MD) error { sent = md; return nil }}
		st, _ := status.FromError(relayError(cl, up, c.err, c.trailer))
		if st.Code() != c.code || !strings.HasPrefix(st.Message(), c.message) {
			t.Errorf("%s: got %s %q, want %s %q...", c.name, st.Code(), st.Message(), c.code, c.message)
		}
		if strings.Contains(st.Message(), up.Target) {
			t.Errorf("%s: the message shows the upstream's address: %q", c.name, st.Message())
		}
		if len(sent.Get("x-request-id")) != 1 {
			t.Errorf("%s: trailer without the request id: %v", c.name, sent)
		}
	}
}

func TestQuoteShowsAShortEscapedPrefix(t *testing.T) {
	long := strings.Repeat("\n", 20000)
	if got := quote(long); got != "'"+strings.Repeat(`\n`, 40)+"'… (20000 characters)" {
		t.Errorf("quote(20000 newlines) = %q", got)
	}
	if got := quote("it's"); got != `'it\'s'` {
		t.Errorf("quote(it's) = %q", got)
	}
	if r := reject(codes.NotFound, strings.Repeat("x", 5000)); len(r.st.Message()) > 1003 {
		t.Errorf("a rejection's message is %d bytes", len(r.st.Message()))
	}
}
