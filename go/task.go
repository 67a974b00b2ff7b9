package taskwire

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

// Task is what a handler knows about the attempt it runs. Its context is
// cancelled when the attempt is cancelled, passes its deadline, or is handed
// back on stop.
type Task struct {
	ID          string
	Attempt     uint32
	MaxAttempts uint32
	Type        string
	Queue       string
	// Deadline is when the attempt must be over; zero when there is none.
	Deadline time.Time
	// Metadata holds the task's labels and trace context.
	Metadata map[string]string
	Logger   *log.Logger

	worker *Worker
	mu     sync.Mutex
	reason string
}

// Progress reports progress (0..100) to watchers. Best effort.
func (t *Task) Progress(percent float32, message string) {
	if len(message) > 1024 {
		message = message[:1024]
	}
	t.worker.send(&pb.ConnectRequest{Progress: []*pb.Progress{{TaskId: t.ID, Attempt: t.Attempt, Percent: percent, Message: message}}})
}

// CancelReason says why the handler's context was cancelled ("" while it was not).
func (t *Task) CancelReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reason
}

type key struct {
	id      string
	attempt uint32
}

type attempt struct {
	key         key
	task        *Task
	cancel      context.CancelFunc
	slotSession int // the session whose credit this attempt's slot counts in
	expired     bool
	released    bool
}

func (a *attempt) stop(reason string) {
	a.task.mu.Lock()
	if a.task.reason == "" {
		a.task.reason = reason
	}
	a.task.mu.Unlock()
	a.cancel()
}

func (w *Worker) start(a *pb.Assignment, session int) {
	k := key{a.GetTaskId(), a.GetAttempt()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[k] != nil {
		return
	}
	task := &Task{
		ID: a.GetTaskId(), Attempt: a.GetAttempt(), MaxAttempts: a.GetMaxAttempts(), Type: a.GetType(), Queue: a.GetQueue(),
		Metadata: a.GetMetadata(), worker: w,
		Logger: log.New(w.log.Writer(), fmt.Sprintf("%s[%s#%d] ", w.log.Prefix(), a.GetTaskId(), a.GetAttempt()), w.log.Flags()),
	}
	if a.GetDeadline() != nil {
		task.Deadline = a.GetDeadline().AsTime()
	}
	ctx, cancel := context.WithCancel(context.Background())
	at := &attempt{key: k, task: task, cancel: cancel, slotSession: session}
	w.running[k] = at
	if w.stopping { // assigned while stopping: hand it back unrun
		w.releaseLocked(at)
		return
	}
	go w.run(ctx, at, a)
}

func (w *Worker) run(ctx context.Context, at *attempt, a *pb.Assignment) {
	defer at.cancel()
	var timer *time.Timer
	if !at.task.Deadline.IsZero() {
		timer = time.AfterFunc(time.Until(at.task.Deadline), func() {
			w.mu.Lock()
			at.expired = true
			w.mu.Unlock()
			at.stop("execution deadline passed")
		})
	}
	var result *pb.ConnectRequest
	var err error
	handler := w.handlers[a.GetType()]
	if handler == nil {
		err = Errorf(codes.Unimplemented, "this worker has no handler for %s", a.GetType())
	} else {
		result, err = w.call(ctx, handler, at.task, a)
	}
	if timer != nil {
		timer.Stop()
	}
	w.mu.Lock()
	expired := at.expired
	w.mu.Unlock()
	cancelled := ctx.Err() != nil
	fail := func(code codes.Code, message string, retryable bool) *pb.ConnectRequest {
		if len(message) > messageMax {
			message = message[:messageMax]
		}
		return &pb.ConnectRequest{Fails: []*pb.Fail{{TaskId: at.key.id, Attempt: at.key.attempt, Message: message, Code: int32(code), Retryable: retryable}}}
	}
	switch {
	case expired:
		result = fail(codes.DeadlineExceeded, "execution deadline passed", true)
	case cancelled:
		result = nil // the server ended this attempt, or it was handed back: no result is wanted
	case err != nil:
		var taskErr *TaskError
		if errors.As(err, &taskErr) {
			result = fail(taskErr.Code, taskErr.Message, taskErr.Retryable)
		} else {
			at.task.Logger.Printf("handler failed: %v", err)
			result = fail(codes.Unknown, err.Error(), true)
		}
	}
	w.finish(at, result)
}

// call runs the handler, turning a panic into a failed attempt.
func (w *Worker) call(ctx context.Context, handler handlerFunc, task *Task, a *pb.Assignment) (result *pb.ConnectRequest, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return handler(ctx, task, a)
}

func (w *Worker) finish(at *attempt, result *pb.ConnectRequest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[at.key] != at {
		return // handed back on stop: already answered for
	}
	delete(w.running, at.key)
	request := &pb.ConnectRequest{}
	if result != nil {
		w.unacked[at.key] = result
		request = proto.Clone(result).(*pb.ConnectRequest)
	}
	if at.slotSession == w.session && !w.stopping && !w.draining {
		request.Credit = 1
	}
	if (result != nil || request.Credit > 0) && w.out != nil {
		w.out.push(request)
	}
	w.maybeEndLocked()
}

// releaseLocked hands an attempt back unfinished: queued again at once, not a failure (PROTOCOL.md §4, §10).
func (w *Worker) releaseLocked(at *attempt) {
	delete(w.running, at.key)
	at.released = true
	at.task.mu.Lock()
	if at.task.reason == "" {
		at.task.reason = "worker stopping"
	}
	at.task.mu.Unlock()
	at.cancel()
	request := &pb.ConnectRequest{Releases: []*pb.AttemptRef{{TaskId: at.key.id, Attempt: at.key.attempt}}}
	w.unacked[at.key] = request
	if w.out != nil {
		w.out.push(request)
	}
}
