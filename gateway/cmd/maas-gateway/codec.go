package main

// The codec: a *frame passes through as the bytes it holds (the gateway forwards messages it never decodes);
// anything else, the gateway's own health and reflection messages, goes to gRPC's proto codec.

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec this one falls back to
)

// frame is one serialized message, as it came off the wire.
type frame struct {
	payload []byte
}

type rawCodec struct {
	proto encoding.Codec
}

func newRawCodec() rawCodec { return rawCodec{proto: encoding.GetCodec("proto")} }

func (c rawCodec) Marshal(v interface{}) ([]byte, error) {
	if f, ok := v.(*frame); ok {
		return f.payload, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal keeps data: grpc-go (1.33) hands each message its own buffer and never reuses it.
func (c rawCodec) Unmarshal(data []byte, v interface{}) error {
	if f, ok := v.(*frame); ok {
		f.payload = data
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// Name is "proto": the content-type the upstreams see stays application/grpc.
func (rawCodec) Name() string   { return "proto" }
func (rawCodec) String() string { return "proto" }
