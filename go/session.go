package taskwire

import (
	"context"
	"io"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

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
