package taskwire

import (
	"sync"

	pb "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

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
