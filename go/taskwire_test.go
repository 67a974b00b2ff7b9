package taskwire

import (
	"context"
	"strings"
	"testing"

	demov1 "github.com/taskwire/taskwire/go/gen/demo/v1"
)

var demo = demov1.File_demo_v1_demo_proto.Services().ByName("DemoService")

func TestMethodBindsTheGeneratedTypes(t *testing.T) {
	echo, err := NewMethod[*demov1.EchoRequest, *demov1.EchoResponse](demo.Methods().ByName("Echo"))
	if err != nil || echo.Path != "/demo.v1.DemoService/Echo" {
		t.Fatalf("got %+v, %v", echo, err)
	}
	_, err = NewMethod[*demov1.SleepRequest, *demov1.EchoResponse](demo.Methods().ByName("Echo"))
	if err == nil || err.Error() != "taskwire: /demo.v1.DemoService/Echo takes demo.v1.EchoRequest, not demo.v1.SleepRequest" {
		t.Fatalf("a mismatched request type: %v", err)
	}
	_, err = NewMethod[*demov1.EchoRequest, *demov1.SleepResponse](demo.Methods().ByName("Echo"))
	if err == nil || !strings.Contains(err.Error(), "returns demo.v1.EchoResponse, not demo.v1.SleepResponse") {
		t.Fatalf("a mismatched response type: %v", err)
	}
	_, err = NewMethod[*demov1.EchoRequest, *demov1.EchoResponse](demo.Methods().ByName("Nope"))
	if err == nil || !strings.Contains(err.Error(), "method descriptor is nil") {
		t.Fatalf("an unknown method: %v", err)
	}
}

func TestPackAndUnpackCheckTheType(t *testing.T) {
	packed, err := pack(&demov1.EchoRequest{Text: "x"})
	if err != nil || packed.TypeUrl != "type.googleapis.com/demo.v1.EchoRequest" {
		t.Fatalf("got %v, %v", packed, err)
	}
	if in, err := unpack[*demov1.EchoRequest](packed, "the input"); err != nil || in.Text != "x" {
		t.Fatalf("got %v, %v", in, err)
	}
	_, err = unpack[*demov1.SleepRequest](packed, "the input")
	if err == nil || err.Error() != "the input has type type.googleapis.com/demo.v1.EchoRequest, expected type.googleapis.com/demo.v1.SleepRequest" {
		t.Fatalf("a mistyped input: %v", err)
	}
}

func TestWorkerSettingsSayWhatToFix(t *testing.T) {
	if _, err := NewWorker(WorkerOptions{}); err == nil || !strings.Contains(err.Error(), "WorkerOptions.Server is required") {
		t.Fatalf("no server: %v", err)
	}
	if _, err := NewWorker(WorkerOptions{Server: "127.0.0.1:1", Slots: 20000}); err == nil || !strings.Contains(err.Error(), "Slots must be 1..10000, got 20000") {
		t.Fatalf("too many slots: %v", err)
	}
}

func TestRunRefusesToStartWithAMissingHandler(t *testing.T) {
	w, err := NewWorker(WorkerOptions{Server: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	w.Service(demo)
	Handle(w, MustMethod[*demov1.EchoRequest, *demov1.EchoResponse](demo.Methods().ByName("Echo")),
		func(ctx context.Context, task *Task, in *demov1.EchoRequest) (*demov1.EchoResponse, error) {
			return &demov1.EchoResponse{}, nil
		})
	err = w.Run(context.Background())
	if err == nil || err.Error() != "taskwire: no handler for /demo.v1.DemoService/Fail, /demo.v1.DemoService/Sleep: register one for every method of the service" {
		t.Fatalf("got %v", err)
	}
}
