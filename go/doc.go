// Package taskwire runs workers and clients for a taskwire server over gRPC.
//
// A task type is a method of an ordinary proto service. Bind one to its
// generated Go types once:
//
//	var echo = taskwire.MustMethod[*demov1.EchoRequest, *demov1.EchoResponse](
//		demov1.File_demo_v1_demo_proto.Services().ByName("DemoService").Methods().ByName("Echo"))
//
// A Worker runs handlers for task types on one WorkerService/Connect stream,
// as docs/PROTOCOL.md specifies: slots, credit, heartbeats, results kept until
// acknowledged, cancel, drain, a graceful stop, reconnects with backoff.
//
//	w, err := taskwire.NewWorker(taskwire.WorkerOptions{Server: "127.0.0.1:50051", Slots: 4})
//	w.Service(demoService) // every method needs a handler before Run
//	taskwire.Handle(w, echo, func(ctx context.Context, t *taskwire.Task, in *demov1.EchoRequest) (*demov1.EchoResponse, error) {
//		return &demov1.EchoResponse{Text: in.Text}, nil
//	})
//	err = w.Run(ctx) // until ctx is done, then a graceful stop
//
// A Client submits typed inputs and waits for typed outputs, watches and
// cancels tasks, or calls a task type through the gateway:
//
//	c, err := taskwire.NewClient(taskwire.ClientOptions{Server: "127.0.0.1:50051"})
//	h, err := taskwire.Submit(ctx, c, echo, &demov1.EchoRequest{Text: "hi"}, nil)
//	out, err := h.Result(ctx)
package taskwire
