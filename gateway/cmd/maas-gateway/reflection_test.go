package main

import (
	"reflect"
	"testing"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

func files(fdps ...*descriptorpb.FileDescriptorProto) ([]*descriptorpb.FileDescriptorProto, map[string][]byte) {
	raw := map[string][]byte{}
	for _, f := range fdps {
		raw[f.GetName()], _ = proto.Marshal(f)
	}
	return fdps, raw
}

func TestReflectionFindsEverySymbolWithItsImports(t *testing.T) {
	common := &descriptorpb.FileDescriptorProto{Name: proto.String("a/common.proto"), Package: proto.String("a.common"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Info")}}}
	svc := &descriptorpb.FileDescriptorProto{
		Name: proto.String("a/svc.proto"), Package: proto.String("a.v1"), Dependency: []string{"a/common.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:       proto.String("Req"),
			Field:      []*descriptorpb.FieldDescriptorProto{{Name: proto.String("text")}},
			NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("Inner")}},
			EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Kind"),
				Value: []*descriptorpb.EnumValueDescriptorProto{{Name: proto.String("KIND_A")}}}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Svc"),
			Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Do")}}}},
		Extension: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("note"), Number: proto.Int32(1000),
			Extendee: proto.String(".a.v1.Req")}},
	}
	r, err := NewReflection(func() []string { return []string{"a.v1.Svc"} })
	if err != nil {
		t.Fatal(err)
	}
	r.Add(files(common, svc))
	for _, symbol := range []string{"a.v1.Svc", "a.v1.Svc.Do", "a.v1.Req", "a.v1.Req.text", "a.v1.Req.Inner",
		"a.v1.Req.Kind", "a.v1.Req.KIND_A", "a.v1.note", "grpc.health.v1.Health"} {
		reply := r.answer(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: symbol}})
		got := reply.GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(got) == 0 {
			t.Errorf("%s: %v", symbol, reply.GetErrorResponse())
		}
	}
	reply := r.answer(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{
		FileByFilename: "a/svc.proto"}})
	if n := len(reply.GetFileDescriptorResponse().GetFileDescriptorProto()); n != 2 {
		t.Errorf("a/svc.proto and its import: %d files", n)
	}
	reply = r.answer(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "a.v1.Nope"}})
	if reply.GetErrorResponse().GetErrorCode() != 5 { // NOT_FOUND
		t.Errorf("unknown symbol: %v", reply)
	}
	reply = r.answer(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_AllExtensionNumbersOfType{
		AllExtensionNumbersOfType: "a.v1.Req"}})
	if got := reply.GetAllExtensionNumbersResponse().GetExtensionNumber(); len(got) != 1 || got[0] != 1000 {
		t.Errorf("extension numbers: %v", reply)
	}
	reply = r.answer(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range reply.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	want := []string{"a.v1.Svc", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("services: %v", names)
	}
}
