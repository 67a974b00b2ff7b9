// Command worker serves demo.v1.DemoService (Echo, Sleep, Fail) with the taskwire Go runtime.
//
//	worker --server 127.0.0.1:50051
//
// Settings come from flags or, as for the taskwire CLI, from TASKWIRE_SERVER,
// TASKWIRE_CONCURRENCY, TASKWIRE_WORKER_ID, TASKWIRE_GRACE_MS and TASKWIRE_TOKEN. On SIGTERM
// it takes nothing new, lets running tasks finish within the grace period,
// hands back the rest and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	taskwire "github.com/taskwire/taskwire/go"
	demov1 "github.com/taskwire/taskwire/go/gen/demo/v1"
)

var (
	demo  = demov1.File_demo_v1_demo_proto.Services().ByName("DemoService")
	echo  = taskwire.MustMethod[*demov1.EchoRequest, *demov1.EchoResponse](demo.Methods().ByName("Echo"))
	sleep = taskwire.MustMethod[*demov1.SleepRequest, *demov1.SleepResponse](demo.Methods().ByName("Sleep"))
	fail  = taskwire.MustMethod[*demov1.FailRequest, *demov1.FailResponse](demo.Methods().ByName("Fail"))
)

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func envInt(name string, fallback int) int {
	value, err := strconv.Atoi(env(name, strconv.Itoa(fallback)))
	if err != nil {
		log.Fatalf("%s must be a whole number, got %q", name, os.Getenv(name))
	}
	return value
}

func main() {
	server := flag.String("server", env("TASKWIRE_SERVER", "127.0.0.1:50051"), "the taskwire server's address")
	workerID := flag.String("worker-id", env("TASKWIRE_WORKER_ID", fmt.Sprintf("go-worker-%d", os.Getpid())), "this worker's id")
	slots := flag.Int("slots", envInt("TASKWIRE_CONCURRENCY", 4), "tasks run at once")
	graceMs := flag.Int("grace-ms", envInt("TASKWIRE_GRACE_MS", 30000), "on SIGTERM, how long running tasks may finish")
	token := flag.String("token", os.Getenv("TASKWIRE_TOKEN"), "bearer token, when the server has tokens on")
	flag.Parse()
	logger := log.New(os.Stdout, "taskwire ", log.LstdFlags)

	w, err := taskwire.NewWorker(taskwire.WorkerOptions{
		Server: *server, WorkerID: *workerID, Slots: *slots, Grace: time.Duration(*graceMs) * time.Millisecond, Token: *token, Logger: logger,
	})
	if err != nil {
		logger.Fatal(err)
	}
	w.Service(demo)
	taskwire.Handle(w, echo, func(ctx context.Context, t *taskwire.Task, in *demov1.EchoRequest) (*demov1.EchoResponse, error) {
		return &demov1.EchoResponse{Text: in.Text, Payload: in.Payload, WorkerId: *workerID, Attempt: t.Attempt}, nil
	})
	taskwire.Handle(w, sleep, func(ctx context.Context, t *taskwire.Task, in *demov1.SleepRequest) (*demov1.SleepResponse, error) {
		started := time.Now()
		steps := in.Steps
		if steps == 0 {
			steps = 1
		}
		for step := uint32(1); step <= steps; step++ {
			select {
			case <-ctx.Done(): // cancelled, past its deadline, or handed back
				return nil, ctx.Err()
			case <-time.After(time.Duration(in.DurationMs) * time.Millisecond / time.Duration(steps)):
			}
			if in.Steps > 0 {
				t.Progress(float32(100*step)/float32(steps), fmt.Sprintf("step %d of %d", step, steps))
			}
		}
		return &demov1.SleepResponse{SleptMs: uint32(time.Since(started).Milliseconds())}, nil
	})
	taskwire.Handle(w, fail, func(ctx context.Context, t *taskwire.Task, in *demov1.FailRequest) (*demov1.FailResponse, error) {
		if in.FailAttempts != 0 && t.Attempt > in.FailAttempts {
			return &demov1.FailResponse{Attempt: t.Attempt}, nil
		}
		code := codes.Code(in.Code)
		if code == 0 {
			code = codes.Unknown
		}
		message := in.Message
		if message == "" {
			message = fmt.Sprintf("failing attempt %d on purpose", t.Attempt)
		}
		if in.Permanent {
			return nil, taskwire.Permanent(code, "%s", message)
		}
		return nil, taskwire.Errorf(code, "%s", message)
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Run(ctx); err != nil {
		var refused *taskwire.RefusedError
		if errors.As(err, &refused) {
			logger.Printf("%v", err)
			os.Exit(1)
		}
		logger.Fatal(err)
	}
}
