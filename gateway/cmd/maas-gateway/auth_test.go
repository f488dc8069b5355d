package main

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

func TestTokenBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewTokenBucket(4, 2, func() time.Time { return now })
	if b.Take() != 0 || b.Take() != 0 {
		t.Fatal("the burst is not there")
	}
	if wait := b.Take(); wait != 250*time.Millisecond {
		t.Fatalf("wait %v", wait)
	}
	now = now.Add(250 * time.Millisecond)
	if b.Take() != 0 {
		t.Fatal("no token after the wait it gave")
	}
	now = now.Add(10 * time.Second)
	if b.Take() != 0 || b.Take() != 0 || b.Take() == 0 {
		t.Fatal("more than the burst banked")
	}
}

func TestPresentedKey(t *testing.T) {
	for _, c := range []struct {
		md   metadata.MD
		key  string
		sent bool
	}{
		{metadata.Pairs("authorization", "Bearer  k1 "), "k1", true},
		{metadata.Pairs("authorization", "bearer k2"), "k2", true},
		{metadata.Pairs("x-api-key", "k3"), "k3", true},
		{metadata.Pairs("authorization", "Basic xyz"), "", false},
		{metadata.Pairs("authorization", "Bearer "), "", false},
		{metadata.MD{}, "", false},
	} {
		key, sent := PresentedKey(c.md)
		if key != c.key || sent != c.sent {
			t.Errorf("%v: %q %v", c.md, key, sent)
		}
	}
}

func TestKeyring(t *testing.T) {
	k := NewKeyring([]string{"a", "b"}, nil, nil, 1, 1)
	if r := k.Admit(metadata.Pairs("x-api-key", "a"), "/m.S/A"); r != nil {
		t.Fatal(r)
	}
	r := k.Admit(metadata.Pairs("x-api-key", "a"), "/m.S/A")
	if r == nil || r.st.Code() != codes.ResourceExhausted || len(r.st.Details()) != 1 {
		t.Fatalf("over the limit: %v", r)
	}
	if r := k.Admit(metadata.Pairs("authorization", "Bearer b"), "/m.S/A"); r != nil {
		t.Fatal("b has its own bucket")
	}
	for _, md := range []metadata.MD{{}, metadata.Pairs("x-api-key", "c")} {
		if r := k.Admit(md, "/m.S/A"); r == nil || r.st.Code() != codes.Unauthenticated {
			t.Errorf("%v: %v", md, r)
		}
	}
}

func TestAdminMethodsNeedAnAdminKey(t *testing.T) {
	retrain := "/maas.music.v1.MusicRecommender/RetrainModel"
	k := NewKeyring([]string{"user", "both"}, []string{"root", "both"}, list(defaultAdminMethods), 0, 0)
	cases := []struct {
		key, method string
		code        codes.Code
	}{
		{"user", "/maas.music.v1.MusicRecommender/Recommend", codes.OK},
		{"user", retrain, codes.PermissionDenied},
		{"user", "/maas.music.v1.MusicRecommender/UpsertTracks", codes.PermissionDenied},
		{"root", retrain, codes.OK},
		{"root", "/maas.nlp.v1.NlpAnalysis/EmbedText", codes.OK},
		{"both", retrain, codes.OK}, // in both lists: admin
		{"nobody", retrain, codes.Unauthenticated},
	}
	for _, c := range cases {
		got := codes.OK
		if r := k.Admit(metadata.Pairs("x-api-key", c.key), c.method); r != nil {
			got = r.st.Code()
		}
		if got != c.code {
			t.Errorf("%s calling %s: %s, want %s", c.key, c.method, got, c.code)
		}
	}
}
