package main

// Server reflection (v1alpha) for the gateway: every routed service (grpcurl list shows the whole suite), described
// by the proto files the upstreams' own reflection returned, plus the gateway's health and reflection services.
// A file is found by name or by any symbol it defines (messages, fields, enums and their values, services and
// their methods, extensions), and sent with every file it imports.

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

type Reflection struct {
	mu         sync.RWMutex
	raw        map[string][]byte   // file name -> serialized FileDescriptorProto
	deps       map[string][]string // file name -> the files it imports
	symbols    map[string]string   // fully qualified symbol -> file name
	extensions map[string]map[int32]string
	names      func() []string // routed service names
}

func NewReflection(names func() []string) (*Reflection, error) {
	r := &Reflection{raw: map[string][]byte{}, deps: map[string][]string{}, symbols: map[string]string{},
		extensions: map[string]map[int32]string{}, names: names}
	for _, path := range []string{"grpc/health/v1/health.proto", "reflection/grpc_reflection_v1alpha/reflection.proto"} {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return nil, fmt.Errorf("reflection: %s is not registered: %v", path, err)
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		blob, err := proto.Marshal(fdp)
		if err != nil {
			return nil, err
		}
		r.Add([]*descriptorpb.FileDescriptorProto{fdp}, map[string][]byte{path: blob})
	}
	return r, nil
}

// Add files not known yet (a file of the same name from another upstream: the first one stays).
func (r *Reflection) Add(files []*descriptorpb.FileDescriptorProto, raw map[string][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range files {
		name := f.GetName()
		if _, known := r.raw[name]; known {
			continue
		}
		r.raw[name] = raw[name]
		r.deps[name] = f.GetDependency()
		r.index(f)
	}
}

func (r *Reflection) index(f *descriptorpb.FileDescriptorProto) {
	name := f.GetName()
	prefix := ""
	if f.GetPackage() != "" {
		prefix = f.GetPackage() + "."
	}
	add := func(symbol string) {
		if _, taken := r.symbols[symbol]; !taken {
			r.symbols[symbol] = name
		}
	}
	addExtensions := func(scope string, exts []*descriptorpb.FieldDescriptorProto) {
		for _, ext := range exts {
			add(scope + ext.GetName())
			extendee := strings.TrimPrefix(ext.GetExtendee(), ".")
			if r.extensions[extendee] == nil {
				r.extensions[extendee] = map[int32]string{}
			}
			r.extensions[extendee][ext.GetNumber()] = name
		}
	}
	addEnum := func(scope string, e *descriptorpb.EnumDescriptorProto) {
		add(scope + e.GetName())
		for _, v := range e.GetValue() {
			add(scope + v.GetName()) // enum values are siblings of their enum
		}
	}
	var addMessage func(scope string, m *descriptorpb.DescriptorProto)
	addMessage = func(scope string, m *descriptorpb.DescriptorProto) {
		full := scope + m.GetName()
		add(full)
		for _, field := range m.GetField() {
			add(full + "." + field.GetName())
		}
		for _, oneof := range m.GetOneofDecl() {
			add(full + "." + oneof.GetName())
		}
		for _, nested := range m.GetNestedType() {
			addMessage(full+".", nested)
		}
		for _, e := range m.GetEnumType() {
			addEnum(full+".", e)
		}
		addExtensions(full+".", m.GetExtension())
	}
	for _, m := range f.GetMessageType() {
		addMessage(prefix, m)
	}
	for _, e := range f.GetEnumType() {
		addEnum(prefix, e)
	}
	for _, s := range f.GetService() {
		add(prefix + s.GetName())
		for _, m := range s.GetMethod() {
			add(prefix + s.GetName() + "." + m.GetName()) // what grpcurl describe asks for a method
		}
	}
	addExtensions(prefix, f.GetExtension())
}

// withDependencies: file and every file it imports, transitively, each once (what grpc's own reflection sends).
func (r *Reflection) withDependencies(file string) [][]byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out [][]byte
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		blob, ok := r.raw[name]
		if !ok {
			return // an import the upstream did not send: grpcurl says which
		}
		out = append(out, blob)
		for _, dep := range r.deps[name] {
			visit(dep)
		}
	}
	visit(file)
	return out
}

func (r *Reflection) services() []string {
	seen := map[string]bool{healthService: true, reflectionService: true}
	for _, name := range r.names() {
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (r *Reflection) ServerReflectionInfo(stream rpb.ServerReflection_ServerReflectionInfoServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(r.answer(req)); err != nil {
			return err
		}
	}
}

func (r *Reflection) answer(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
	out := &rpb.ServerReflectionResponse{ValidHost: req.GetHost(), OriginalRequest: req}
	notFound := func(what string) *rpb.ServerReflectionResponse {
		out.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
			ErrorCode: int32(codes.NotFound), ErrorMessage: what + " not found"}}
		return out
	}
	files := func(name string) *rpb.ServerReflectionResponse {
		out.MessageResponse = &rpb.ServerReflectionResponse_FileDescriptorResponse{
			FileDescriptorResponse: &rpb.FileDescriptorResponse{FileDescriptorProto: r.withDependencies(name)}}
		return out
	}
	switch m := req.GetMessageRequest().(type) {
	case *rpb.ServerReflectionRequest_ListServices:
		var list []*rpb.ServiceResponse
		for _, name := range r.services() {
			list = append(list, &rpb.ServiceResponse{Name: name})
		}
		out.MessageResponse = &rpb.ServerReflectionResponse_ListServicesResponse{
			ListServicesResponse: &rpb.ListServiceResponse{Service: list}}
		return out
	case *rpb.ServerReflectionRequest_FileByFilename:
		r.mu.RLock()
		_, ok := r.raw[m.FileByFilename]
		r.mu.RUnlock()
		if !ok {
			return notFound("file " + m.FileByFilename)
		}
		return files(m.FileByFilename)
	case *rpb.ServerReflectionRequest_FileContainingSymbol:
		r.mu.RLock()
		file, ok := r.symbols[strings.TrimPrefix(m.FileContainingSymbol, ".")]
		r.mu.RUnlock()
		if !ok {
			return notFound("symbol " + m.FileContainingSymbol)
		}
		return files(file)
	case *rpb.ServerReflectionRequest_FileContainingExtension:
		ext := m.FileContainingExtension
		r.mu.RLock()
		file, ok := r.extensions[strings.TrimPrefix(ext.GetContainingType(), ".")][ext.GetExtensionNumber()]
		r.mu.RUnlock()
		if !ok {
			return notFound(fmt.Sprintf("extension %d of %s", ext.GetExtensionNumber(), ext.GetContainingType()))
		}
		return files(file)
	case *rpb.ServerReflectionRequest_AllExtensionNumbersOfType:
		typ := strings.TrimPrefix(m.AllExtensionNumbersOfType, ".")
		r.mu.RLock()
		_, known := r.symbols[typ]
		var numbers []int32
		for n := range r.extensions[typ] {
			numbers = append(numbers, n)
		}
		r.mu.RUnlock()
		if !known {
			return notFound("type " + typ)
		}
		sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
		out.MessageResponse = &rpb.ServerReflectionResponse_AllExtensionNumbersResponse{
			AllExtensionNumbersResponse: &rpb.ExtensionNumberResponse{BaseTypeName: typ, ExtensionNumber: numbers}}
		return out
	}
	out.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
		ErrorCode: int32(codes.InvalidArgument), ErrorMessage: "unknown request"}}
	return out
}
