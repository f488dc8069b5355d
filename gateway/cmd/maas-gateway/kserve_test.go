package main

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestStringField(t *testing.T) {
	msg := protowire.AppendTag(nil, 2, protowire.BytesType)
	msg = protowire.AppendBytes(msg, make([]byte, 1000)) // a tensor payload before the name: skipped over
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "first")
	msg = protowire.AppendTag(msg, 3, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 7)
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "double")
	if v, ok, err := stringField(msg, 1); v != "double" || !ok || err != nil { // the last one wins
		t.Errorf("%q %v %v", v, ok, err)
	}
	if v, ok, err := stringField(nil, 1); v != "" || ok || err != nil {
		t.Errorf("empty: %q %v %v", v, ok, err)
	}
	if _, _, err := stringField(msg[:len(msg)-2], 1); err == nil {
		t.Error("truncated message accepted")
	}
	bad := protowire.AppendTag(nil, 1, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0xff, 0xfe})
	if _, _, err := stringField(bad, 1); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if v, _, _ := stringField(modelMetadataRequest("triple"), 1); v != "triple" {
		t.Errorf("ModelMetadataRequest: %q", v)
	}
}
