package taskwire

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

const (
	taskIDHeader         = "taskwire-task-id"
	idempotencyKeyHeader = "taskwire-idempotency-key"
)

// ClientOptions configure a Client. Server is required.
type ClientOptions struct {
	Server string
	// Token is sent as "authorization: Bearer <token>" when set.
	Token string
	// DialOptions replace the default grpc.WithInsecure() (TLS: grpc.WithTransportCredentials).
	DialOptions []grpc.DialOption
}

// Client submits, watches, waits for and cancels tasks, and calls task types through the gateway.
type Client struct {
	Conn  *grpc.ClientConn
	Tasks pb.TaskServiceClient
	token string
}

// NewClient dials the server (lazily: the first call connects).
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.Server == "" {
		return nil, errors.New("taskwire: ClientOptions.Server is required: the server's address, e.g. 127.0.0.1:50051")
	}
	dial := opts.DialOptions
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithInsecure()}
	}
	conn, err := grpc.Dial(opts.Server, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{Conn: conn, Tasks: pb.NewTaskServiceClient(conn), token: opts.Token}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

func (c *Client) ctx(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// TaskHandle is a submitted task of a known type: its id, and typed access to its result.
type TaskHandle[Resp proto.Message] struct {
	ID string
	// Existing is true when an idempotency key matched an earlier task.
	Existing bool
	client   *Client
	path     string
}

// Submit submits one task and returns once the server has committed it.
// options may be nil: unset fields take the task type's defaults.
func Submit[Req, Resp proto.Message](ctx context.Context, c *Client, method Method[Req, Resp], input Req, options *pb.TaskOptions) (*TaskHandle[Resp], error) {
	packed, err := pack(input)
	if err != nil {
		return nil, fmt.Errorf("taskwire: the input of %s does not encode: %w", method.Path, err)
	}
	response, err := c.Tasks.SubmitTask(c.ctx(ctx), &pb.SubmitTaskRequest{Type: method.Path, Input: packed, Options: options})
	if err != nil {
		return nil, err
	}
	return &TaskHandle[Resp]{ID: response.GetTask().GetId(), Existing: response.GetExisting(), client: c, path: method.Path}, nil
}

// Lookup is a handle on a task submitted earlier, by id.
func Lookup[Req, Resp proto.Message](c *Client, method Method[Req, Resp], id string) *TaskHandle[Resp] {
	return &TaskHandle[Resp]{ID: id, client: c, path: method.Path}
}

// Watch calls fn with each committed change of the task and each progress
// report (event.GetTask(), event.GetProgress()) until the task ends; it
// returns the task as it ended.
func (h *TaskHandle[Resp]) Watch(ctx context.Context, fn func(*pb.WatchTaskResponse)) (*pb.Task, error) {
	stream, err := h.client.Tasks.WatchTask(h.client.ctx(ctx), &pb.WatchTaskRequest{Id: h.ID})
	if err != nil {
		return nil, err
	}
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			return nil, fmt.Errorf("taskwire: the watch of task %s ended before the task did", h.ID)
		}
		if err != nil {
			return nil, err
		}
		if fn != nil {
			fn(event)
		}
		if task := event.GetTask(); task != nil && terminal(task.GetState()) {
			return task, nil
		}
	}
}

// Result waits for the task to end and returns its output as the method's
// response message, or a *TaskFailedError for a task that failed or was cancelled.
func (h *TaskHandle[Resp]) Result(ctx context.Context) (Resp, error) {
	var zero Resp
	task, err := h.Watch(ctx, nil)
	if err != nil {
		return zero, err
	}
	if task.GetState() == pb.TaskState_TASK_STATE_SUCCEEDED && task.GetOutput() == nil {
		got, err := h.client.Tasks.GetTask(h.client.ctx(ctx), &pb.GetTaskRequest{Id: h.ID})
		if err != nil {
			return zero, err
		}
		task = got.GetTask()
	}
	if task.GetState() != pb.TaskState_TASK_STATE_SUCCEEDED {
		return zero, failure(task)
	}
	return unpack[Resp](task.GetOutput(), "the output of "+h.path)
}

// Cancel cancels the task; a running handler is told at once.
func (h *TaskHandle[Resp]) Cancel(ctx context.Context, reason string) (*pb.Task, error) {
	response, err := h.client.Tasks.CancelTask(h.client.ctx(ctx), &pb.CancelTaskRequest{Id: h.ID, Reason: reason})
	return response.GetTask(), err
}

// Get returns the task as stored now.
func (h *TaskHandle[Resp]) Get(ctx context.Context) (*pb.Task, error) {
	response, err := h.client.Tasks.GetTask(h.client.ctx(ctx), &pb.GetTaskRequest{Id: h.ID})
	return response.GetTask(), err
}

func terminal(state pb.TaskState) bool {
	return state == pb.TaskState_TASK_STATE_SUCCEEDED || state == pb.TaskState_TASK_STATE_FAILED || state == pb.TaskState_TASK_STATE_CANCELLED
}

// CallOptions tune a gateway call.
type CallOptions struct {
	// IdempotencyKey makes a repeated call return the first call's task.
	IdempotencyKey string
	// TaskID, when not nil, receives the id of the task the call ran.
	TaskID *string
}

// Call runs a task type as a plain gRPC method through the gateway: the server
// queues a task and answers with its result. ctx's deadline becomes the task's
// timeout; cancelling ctx cancels the task. A failed task is an error with its status.
func Call[Req, Resp proto.Message](ctx context.Context, c *Client, method Method[Req, Resp], input Req, options *CallOptions) (Resp, error) {
	output := newMessage[Resp]()
	ctx = c.ctx(ctx)
	var header metadata.MD
	callOptions := []grpc.CallOption{grpc.Header(&header)}
	if options != nil && options.IdempotencyKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, idempotencyKeyHeader, options.IdempotencyKey)
	}
	err := c.Conn.Invoke(ctx, method.Path, input, output, callOptions...)
	if options != nil && options.TaskID != nil {
		if ids := header.Get(taskIDHeader); len(ids) > 0 {
			*options.TaskID = ids[0]
		}
	}
	if err != nil {
		var zero Resp
		return zero, err
	}
	return output, nil
}
