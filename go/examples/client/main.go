// Command client calls demo.v1.DemoService through a taskwire server with the Go client.
//
//	client --server 127.0.0.1:50051 gateway --text hi
//	client submit --text hi
//	client sleep --ms 5000 --deadline-ms 200
//	client cancel --ms 60000
//
// Each command prints one JSON line with what happened.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/status"

	taskwire "github.com/taskwire/taskwire/go"
	demov1 "github.com/taskwire/taskwire/go/gen/demo/v1"
	taskwirev1 "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

var (
	demo  = demov1.File_demo_v1_demo_proto.Services().ByName("DemoService")
	echo  = taskwire.MustMethod[*demov1.EchoRequest, *demov1.EchoResponse](demo.Methods().ByName("Echo"))
	sleep = taskwire.MustMethod[*demov1.SleepRequest, *demov1.SleepResponse](demo.Methods().ByName("Sleep"))
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "the taskwire server's address")
	token := flag.String("token", os.Getenv("TASKWIRE_TOKEN"), "bearer token, when the server has tokens on")
	flag.Parse()
	if flag.NArg() < 1 {
		fail(errors.New("usage: client [--server ADDRESS] gateway|submit|sleep|cancel [flags]"))
	}
	command := flag.NewFlagSet(flag.Arg(0), flag.ExitOnError)
	text := command.String("text", "hello from go", "Echo's text")
	ms := command.Int("ms", 5000, "Sleep's duration")
	deadlineMs := command.Int("deadline-ms", 200, "the gateway call's deadline")
	_ = command.Parse(flag.Args()[1:])

	client, err := taskwire.NewClient(taskwire.ClientOptions{Server: *server, Token: *token})
	if err != nil {
		fail(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var result map[string]interface{}
	switch flag.Arg(0) {
	case "gateway": // the task type as a plain gRPC method
		var id string
		out, err := taskwire.Call(ctx, client, echo, &demov1.EchoRequest{Text: *text}, &taskwire.CallOptions{TaskID: &id})
		if err != nil {
			fail(err)
		}
		result = map[string]interface{}{"text": out.Text, "worker_id": out.WorkerId, "task_id": id}
	case "submit": // SubmitTask with a typed input, then the typed output
		h, err := taskwire.Submit(ctx, client, echo, &demov1.EchoRequest{Text: *text}, nil)
		if err != nil {
			fail(err)
		}
		out, err := h.Result(ctx)
		if err != nil {
			fail(err)
		}
		result = map[string]interface{}{"task_id": h.ID, "state": "TASK_STATE_SUCCEEDED", "text": out.Text, "worker_id": out.WorkerId}
	case "sleep": // a gateway call with a deadline shorter than the task
		short, cancelShort := context.WithTimeout(ctx, time.Duration(*deadlineMs)*time.Millisecond)
		defer cancelShort()
		_, err := taskwire.Call(short, client, sleep, &demov1.SleepRequest{DurationMs: uint32(*ms)}, nil)
		result = map[string]interface{}{"code": codeName(err)}
	case "cancel": // submit a long Sleep, wait until it runs, cancel it
		h, err := taskwire.Submit(ctx, client, sleep, &demov1.SleepRequest{DurationMs: uint32(*ms)}, nil)
		if err != nil {
			fail(err)
		}
		watch, stopWatch := context.WithCancel(ctx)
		_, _ = h.Watch(watch, func(event *taskwirev1.WatchTaskResponse) {
			if event.GetTask().GetState() == taskwirev1.TaskState_TASK_STATE_RUNNING {
				stopWatch()
			}
		})
		stopWatch()
		if _, err := h.Cancel(ctx, "cancelled from go"); err != nil {
			fail(err)
		}
		_, err = h.Result(ctx)
		var failed *taskwire.TaskFailedError
		if !errors.As(err, &failed) {
			fail(fmt.Errorf("expected the task to end cancelled, got %v", err))
		}
		result = map[string]interface{}{"task_id": h.ID, "state": taskwirev1.TaskState_name[int32(failed.Task.GetState())], "reason": failed.Message}
	default:
		fail(fmt.Errorf("unknown command %q: gateway, submit, sleep or cancel", flag.Arg(0)))
	}
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
}

func codeName(err error) string {
	if err == nil {
		return "OK"
	}
	names := map[string]string{"DeadlineExceeded": "DEADLINE_EXCEEDED", "Canceled": "CANCELLED"}
	code := status.Code(err).String()
	if name, ok := names[code]; ok {
		return name
	}
	return code
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
