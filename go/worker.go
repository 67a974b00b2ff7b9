package taskwire

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

// Version is sent in Hello.version unless WorkerOptions.Version says otherwise.
const Version = "taskwire-go/0.1.0"

const (
	batchMax   = 256             // most items merged into one ConnectRequest
	ackWait    = 5 * time.Second // how long a stopping worker waits for its last acknowledgements
	messageMax = 4096            // Fail.message is cut here (PROTOCOL.md §4)
)

// WorkerOptions configure a Worker. Server is required.
type WorkerOptions struct {
	// Server is the server's address, "127.0.0.1:50051" or "dns:///taskwire:50051".
	Server string
	// WorkerID is a stable id of this process; default host name and pid.
	WorkerID string
	// Slots is how many tasks run at once, 1..10000; default 4.
	Slots int
	// Grace is how long running tasks may finish after a stop before they are handed back; default 30 s.
	Grace time.Duration
	// Labels and Version are shown by ListWorkers.
	Labels  map[string]string
	Version string
	// Token is sent as "authorization: Bearer <token>" when set.
	Token string
	// DialOptions replace the default grpc.WithInsecure() (TLS: grpc.WithTransportCredentials).
	DialOptions []grpc.DialOption
	// ReconnectMin and ReconnectMax bound the backoff between sessions; default 100 ms and 5 s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger; default log.Default() with a "taskwire " prefix.
	Logger *log.Logger
}

type handlerFunc func(ctx context.Context, task *Task, input *pb.Assignment) (*pb.ConnectRequest, error)

// Worker runs handlers for task types on one Connect stream to the server.
type Worker struct {
	opts     WorkerOptions
	log      *log.Logger
	handlers map[string]handlerFunc
	required map[string]bool

	mu         sync.Mutex
	running    map[key]*attempt
	unacked    map[key]*pb.ConnectRequest
	session    int
	out        *outbox // nil while disconnected
	draining   bool
	stopping   bool
	ending     bool
	stopped    chan struct{} // closed when a stop begins
	released   chan struct{} // closed when a stopping worker has nothing left running
	forcing    bool          // a stopping session's forced close is scheduled
	streamStop context.CancelFunc
}

// NewWorker checks the options and makes a worker; register handlers, then Run.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	if opts.Server == "" {
		return nil, errors.New("taskwire: WorkerOptions.Server is required: the server's address, e.g. 127.0.0.1:50051")
	}
	if opts.Slots == 0 {
		opts.Slots = 4
	}
	if opts.Slots < 1 || opts.Slots > 10000 {
		return nil, fmt.Errorf("taskwire: WorkerOptions.Slots must be 1..10000, got %d", opts.Slots)
	}
	if opts.Grace == 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("taskwire: WorkerOptions.Grace must be >= 0, got %s", opts.Grace)
	}
	if opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if len(opts.WorkerID) > 256 {
		return nil, errors.New("taskwire: WorkerOptions.WorkerID must be at most 256 characters")
	}
	if opts.Version == "" {
		opts.Version = Version
	}
	if opts.ReconnectMin == 0 {
		opts.ReconnectMin = 100 * time.Millisecond
	}
	if opts.ReconnectMax == 0 {
		opts.ReconnectMax = 5 * time.Second
	}
	if opts.ReconnectMin > opts.ReconnectMax {
		return nil, errors.New("taskwire: WorkerOptions.ReconnectMin must not exceed ReconnectMax")
	}
	logger := opts.Logger
	if logger == nil {
		logger = log.New(os.Stderr, "taskwire ", log.LstdFlags)
	}
	return &Worker{
		opts:     opts,
		log:      logger,
		handlers: map[string]handlerFunc{},
		required: map[string]bool{},
		running:  map[key]*attempt{},
		unacked:  map[key]*pb.ConnectRequest{},
		stopped:  make(chan struct{}),
		released: make(chan struct{}),
	}, nil
}

// ID is the worker id sent in Hello.
func (w *Worker) ID() string { return w.opts.WorkerID }

// Service declares that the worker serves every method of a service: Run
// refuses to start while one of them has no handler.
func (w *Worker) Service(service protoreflect.ServiceDescriptor) {
	methods := service.Methods()
	for i := 0; i < methods.Len(); i++ {
		w.required[methodPath(methods.Get(i))] = true
	}
}

// Handle registers the handler of one task type. The handler gets the decoded
// request; what it returns is sent as the task's output. Return a TaskError
// (Errorf, Permanent) to classify a failure.
func Handle[Req, Resp proto.Message](w *Worker, method Method[Req, Resp], handler func(ctx context.Context, task *Task, input Req) (Resp, error)) {
	path := method.Path
	w.handlers[path] = func(ctx context.Context, task *Task, a *pb.Assignment) (*pb.ConnectRequest, error) {
		input, err := unpack[Req](a.GetInput(), "the input of "+path)
		if err != nil {
			return nil, &TaskError{Code: codes.InvalidArgument, Message: err.Error()}
		}
		output, err := handler(ctx, task, input)
		if err != nil {
			return nil, err
		}
		if !output.ProtoReflect().IsValid() {
			return nil, &TaskError{Code: codes.Internal, Message: fmt.Sprintf("the handler of %s returned a nil %s", path, method.Descriptor.Output().FullName())}
		}
		packed, err := pack(output)
		if err != nil {
			return nil, &TaskError{Code: codes.Internal, Message: fmt.Sprintf("the output of %s does not encode: %v", path, err)}
		}
		return &pb.ConnectRequest{Completes: []*pb.Complete{{TaskId: task.ID, Attempt: task.Attempt, Output: packed}}}, nil
	}
}

// Run connects, serves and reconnects until ctx is done; then it stops
// gracefully: it takes nothing new, lets running tasks finish within Grace,
// hands back the rest and returns nil. It returns a *RefusedError if the
// server refuses the worker.
func (w *Worker) Run(ctx context.Context) error {
	var missing []string
	for path := range w.required {
		if w.handlers[path] == nil {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("taskwire: no handler for %s: register one for every method of the service", strings.Join(missing, ", "))
	}
	if len(w.handlers) == 0 {
		return errors.New("taskwire: no task types: call Handle before Run")
	}
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-ctx.Done():
			w.stop()
		case <-w.stopped:
		}
	}()
	wait := w.opts.ReconnectMin
	for !w.isStopping() {
		welcomed, err := w.runSession()
		if s, ok := status.FromError(err); ok && err != nil {
			switch s.Code() {
			case codes.InvalidArgument, codes.FailedPrecondition, codes.Unauthenticated, codes.PermissionDenied:
				w.mu.Lock()
				for _, a := range w.running {
					a.cancel()
				}
				w.mu.Unlock()
				w.stopOnce()
				<-watcherDone
				return &RefusedError{Code: s.Code(), Message: s.Message()}
			}
		}
		if w.isStopping() {
			break
		}
		if err != nil {
			w.log.Printf("disconnected: %v", err)
		}
		if welcomed {
			wait = w.opts.ReconnectMin
		}
		jittered := time.Duration(float64(wait) * (0.5 + rand.Float64()/2))
		select {
		case <-time.After(jittered):
		case <-w.stopped:
		}
		if wait = wait * 8 / 5; wait > w.opts.ReconnectMax { // x1.6, as gRPC's connection backoff
			wait = w.opts.ReconnectMax
		}
	}
	<-watcherDone
	<-w.released
	return nil
}

func (w *Worker) isStopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping
}

func (w *Worker) stopOnce() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopping {
		w.stopping = true
		close(w.stopped)
	}
}

// stop begins a graceful stop: nothing new is taken, running tasks get Grace, then are handed back.
func (w *Worker) stop() {
	w.mu.Lock()
	n := len(w.running)
	w.mu.Unlock()
	w.log.Printf("stopping: %d running, grace %s", n, w.opts.Grace)
	w.stopOnce()
	w.maybeEnd()
	go func() {
		defer close(w.released)
		deadline := time.Now().Add(w.opts.Grace)
		for time.Now().Before(deadline) {
			w.mu.Lock()
			idle := len(w.running) == 0
			w.mu.Unlock()
			if idle {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.mu.Lock()
		for _, a := range w.running {
			w.releaseLocked(a)
		}
		w.maybeEndLocked()
		w.mu.Unlock()
	}()
}
