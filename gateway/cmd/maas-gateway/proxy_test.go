package main

import "testing"

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
