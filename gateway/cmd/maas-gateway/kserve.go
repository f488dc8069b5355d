package main

// The gateway's side of the Open Inference Protocol (KServe v2): the model name read off the wire of a request,
// the ModelMetadata request it sends to learn which upstream serves a model, and the answers to the server-level
// calls it makes itself. These messages are a field or three each, written here with protowire: the gateway needs
// no generated code for them (every other message it only forwards).

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

const kserveService = "inference.GRPCInferenceService"

// byModel: the KServe methods routed by model name, and the name of field 1 of their requests.
var byModel = map[string]string{"ModelInfer": "model_name", "ModelMetadata": "name", "ModelReady": "name"}

// stringField is the value of string field `number` of a serialized message, read without parsing the rest (a
// large tensor payload costs a jump, not a copy). As protobuf does, the last occurrence wins. present is false
// when the field is absent; an error when the bytes are not a message or the value is not UTF-8.
func stringField(data []byte, number protowire.Number) (value string, present bool, err error) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		data = data[n:]
		if num == number && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(data)
			if m < 0 {
				return "", false, protowire.ParseError(m)
			}
			if !utf8.Valid(v) {
				return "", false, fmt.Errorf("field %d is not valid UTF-8", number)
			}
			value, present = string(v), true
			data = data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return "", false, protowire.ParseError(m)
		}
		data = data[m:]
	}
	return value, present, nil
}

// modelMetadataRequest is inference.ModelMetadataRequest{name: model}.
func modelMetadataRequest(model string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendString(b, model)
}

// boolMessage is a message whose field 1 is a bool: ServerLiveResponse{live}, ServerReadyResponse{ready}.
func boolMessage(v bool) []byte {
	if !v {
		return []byte{} // proto3: false is not written
	}
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// serverMetadataResponse is inference.ServerMetadataResponse{name, version, extensions: []}.
func serverMetadataResponse(name, version string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, version)
}
