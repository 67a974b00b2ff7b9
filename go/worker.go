package taskwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

type handlerFunc func(ctx context.Context, task *Task, input *pb.Assignment) (*pb.ConnectRequest, error)

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

// runSession runs one session; it returns whether the server welcomed it.
func (w *Worker) runSession() (bool, error) {
	dial := w.opts.DialOptions
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithInsecure()}
	}
	conn, err := grpc.Dial(w.opts.Server, dial...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if w.opts.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+w.opts.Token)
	}
	stream, err := pb.NewWorkerServiceClient(conn).Connect(ctx)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	w.session++
	session := w.session
	w.draining, w.ending, w.forcing = false, false, false
	resume := make([]*pb.AttemptRef, 0, len(w.running)+len(w.unacked))
	for k := range w.running {
		resume = append(resume, &pb.AttemptRef{TaskId: k.id, Attempt: k.attempt})
	}
	for k := range w.unacked {
		resume = append(resume, &pb.AttemptRef{TaskId: k.id, Attempt: k.attempt})
	}
	types := make([]string, 0, len(w.handlers))
	for path := range w.handlers {
		types = append(types, path)
	}
	sort.Strings(types)
	w.mu.Unlock()
	hello := &pb.Hello{
		WorkerId:  w.opts.WorkerID,
		TaskTypes: types,
		Slots:     uint32(w.opts.Slots),
		Labels:    w.opts.Labels,
		Version:   w.opts.Version,
		Protocol:  pb.ProtocolVersion_PROTOCOL_VERSION_1,
		Resume:    resume,
	}
	if err := stream.Send(&pb.ConnectRequest{Hello: hello}); err != nil {
		_, err = stream.Recv() // the status says why
		return false, err
	}
	out := newOutbox()
	welcomed := false
	writerDone := make(chan error, 1)
	defer func() {
		w.mu.Lock()
		w.out = nil
		w.streamStop = nil
		w.mu.Unlock()
		out.close()
		cancel()
		if welcomed {
			<-writerDone
		}
	}()
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			return welcomed, nil
		}
		if err != nil {
			return welcomed, err
		}
		if welcome := response.GetWelcome(); welcome != nil && !welcomed {
			welcomed = true
			go func() { writerDone <- w.write(stream, out) }()
			interval := welcome.GetHeartbeatInterval().AsDuration()
			if interval <= 0 {
				interval = 10 * time.Second
			}
			go heartbeat(ctx, out, interval)
			w.welcome(welcome, session, out, cancel)
			w.log.Printf("connected as %s (session %s)", w.opts.WorkerID, welcome.GetSessionId())
		}
		w.dispatch(response, session)
	}
}

func (w *Worker) welcome(welcome *pb.Welcome, session int, out *outbox, cancel context.CancelFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out = out
	w.streamStop = cancel
	resumed := map[key]bool{}
	for _, ref := range welcome.GetResumed() {
		k := key{ref.GetTaskId(), ref.GetAttempt()}
		resumed[k] = true
		if a := w.running[k]; a != nil {
			a.slotSession = session
		}
	}
	giving := !w.stopping && !w.draining
	for k, request := range w.unacked {
		again := proto.Clone(request).(*pb.ConnectRequest)
		// The new session counted a resumed attempt as holding a slot: its result frees it (PROTOCOL.md §3).
		if resumed[k] && giving {
			again.Credit = 1
		}
		out.push(again)
	}
	w.maybeEndLocked()
}

func (w *Worker) dispatch(response *pb.ConnectResponse, session int) {
	for _, a := range response.GetAssignments() {
		w.start(a, session)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range response.GetCancels() {
		if a := w.running[key{c.GetTaskId(), c.GetAttempt()}]; a != nil {
			reason := c.GetReason()
			if reason == "" {
				reason = "cancelled by the server"
			}
			w.log.Printf("cancel %s attempt %d: %s", c.GetTaskId(), c.GetAttempt(), reason)
			a.stop(reason)
		}
	}
	for _, ref := range response.GetAcknowledged() {
		delete(w.unacked, key{ref.GetTaskId(), ref.GetAttempt()})
	}
	for _, r := range response.GetRejections() {
		w.log.Printf("the server refused a result for %s attempt %d: %s", r.GetTaskId(), r.GetAttempt(), r.GetReason())
	}
	if response.GetDrain() != nil && !w.draining {
		w.draining = true
		w.log.Printf("the server is draining: finishing %d running tasks, then reconnecting", len(w.running))
	}
	w.maybeEndLocked()
}

func (a *attempt) stop(reason string) {
	a.task.mu.Lock()
	if a.task.reason == "" {
		a.task.reason = reason
	}
	a.task.mu.Unlock()
	a.cancel()
}

func (w *Worker) maybeEnd() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maybeEndLocked()
}

// maybeEndLocked half-closes the stream once a draining or stopping worker has nothing left to say.
func (w *Worker) maybeEndLocked() {
	if w.out == nil || w.ending || !(w.draining || w.stopping) {
		return
	}
	if len(w.running) == 0 && len(w.unacked) == 0 {
		w.ending = true
		w.out.end()
	}
	if w.stopping && len(w.running) == 0 && !w.forcing {
		// A stopping worker waits for its last acknowledgements, and the server's end of the stream, only so long.
		w.forcing = true
		stop := w.streamStop
		out := w.out
		time.AfterFunc(ackWait, func() {
			w.mu.Lock()
			current := w.out == out
			w.mu.Unlock()
			if current {
				w.log.Printf("the server did not acknowledge the last results within %s: closing", ackWait)
				stop()
			}
		})
	}
}

func (w *Worker) send(request *pb.ConnectRequest) {
	w.mu.Lock()
	out := w.out
	w.mu.Unlock()
	if out != nil {
		out.push(request)
	}
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

// write is the stream's only writer: it merges what is queued into one message, so load makes batches.
func (w *Worker) write(stream pb.WorkerService_ConnectClient, out *outbox) error {
	for {
		items, end, ok := out.take()
		if !ok {
			return nil
		}
		for len(items) > 0 {
			n := len(items)
			if n > batchMax {
				n = batchMax
			}
			batch := &pb.ConnectRequest{}
			for _, item := range items[:n] {
				credit := batch.Credit + item.Credit
				proto.Merge(batch, item)
				batch.Credit = credit
			}
			items = items[n:]
			if err := stream.Send(batch); err != nil {
				return err
			}
		}
		if end {
			return stream.CloseSend()
		}
	}
}

func heartbeat(ctx context.Context, out *outbox, interval time.Duration) {
	ticker := time.NewTicker(interval * 4 / 5) // a little early, so a busy process still makes the interval
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			out.push(&pb.ConnectRequest{Heartbeat: true})
		}
	}
}

// outbox is an unbounded queue with one reader (the writer goroutine).
type outbox struct {
	mu     sync.Mutex
	items  []*pb.ConnectRequest
	ended  bool
	closed bool
	wake   chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(request *pb.ConnectRequest) {
	o.mu.Lock()
	if !o.ended && !o.closed {
		o.items = append(o.items, request)
	}
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) end() {
	o.mu.Lock()
	o.ended = true
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take waits for items; ok is false once the outbox is closed.
func (o *outbox) take() (items []*pb.ConnectRequest, end bool, ok bool) {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return nil, false, false
		}
		if len(o.items) > 0 || o.ended {
			items, o.items = o.items, nil
			end = o.ended
			o.mu.Unlock()
			return items, end, true
		}
		o.mu.Unlock()
		<-o.wake
	}
}
