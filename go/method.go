package taskwire

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

const typeURLPrefix = "type.googleapis.com/"

// Method is one task type bound to its generated request and response types.
type Method[Req, Resp proto.Message] struct {
	// Path is the task type, "/demo.v1.DemoService/Echo".
	Path       string
	Descriptor protoreflect.MethodDescriptor
}

// NewMethod binds a method descriptor to its generated types, and says so if they do not match.
func NewMethod[Req, Resp proto.Message](method protoreflect.MethodDescriptor) (Method[Req, Resp], error) {
	if method == nil {
		return Method[Req, Resp]{}, fmt.Errorf("taskwire: method descriptor is nil: check the service and method names passed to ByName")
	}
	path := methodPath(method)
	if method.IsStreamingClient() || method.IsStreamingServer() {
		return Method[Req, Resp]{}, fmt.Errorf("taskwire: %s is a streaming method: a task type must be unary", path)
	}
	var req Req
	var resp Resp
	if got, want := req.ProtoReflect().Descriptor().FullName(), method.Input().FullName(); got != want {
		return Method[Req, Resp]{}, fmt.Errorf("taskwire: %s takes %s, not %s", path, want, got)
	}
	if got, want := resp.ProtoReflect().Descriptor().FullName(), method.Output().FullName(); got != want {
		return Method[Req, Resp]{}, fmt.Errorf("taskwire: %s returns %s, not %s", path, want, got)
	}
	return Method[Req, Resp]{Path: path, Descriptor: method}, nil
}

// MustMethod is NewMethod for package-level variables: it panics on a mismatch.
func MustMethod[Req, Resp proto.Message](method protoreflect.MethodDescriptor) Method[Req, Resp] {
	m, err := NewMethod[Req, Resp](method)
	if err != nil {
		panic(err)
	}
	return m
}

func methodPath(method protoreflect.MethodDescriptor) string {
	return "/" + string(method.Parent().FullName()) + "/" + string(method.Name())
}

func newMessage[M proto.Message]() M {
	var zero M
	return zero.ProtoReflect().Type().New().Interface().(M)
}

func pack(message proto.Message) (*anypb.Any, error) {
	value, err := proto.Marshal(message)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: typeURLPrefix + string(message.ProtoReflect().Descriptor().FullName()), Value: value}, nil
}

func unpack[M proto.Message](packed *anypb.Any, what string) (M, error) {
	message := newMessage[M]()
	want := typeURLPrefix + string(message.ProtoReflect().Descriptor().FullName())
	if packed.GetTypeUrl() != want {
		got := packed.GetTypeUrl()
		if got == "" {
			got = "(none)"
		}
		return message, fmt.Errorf("%s has type %s, expected %s", what, got, want)
	}
	if err := proto.Unmarshal(packed.GetValue(), message); err != nil {
		return message, fmt.Errorf("%s does not decode as %s: %v", what, want, err)
	}
	return message, nil
}
