package taskwire

import (
	"fmt"

	"google.golang.org/grpc/codes"

	taskwirev1 "github.com/taskwire/taskwire/go/gen/taskwire/v1"
)

// TaskError fails an attempt with a status code. A handler returns one (or
// wraps one) to classify its failure; any other error is a retryable Unknown.
type TaskError struct {
	Code      codes.Code
	Message   string
	Retryable bool
}

func (e *TaskError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf is a retryable failure: the task runs again after its backoff until its attempts run out.
func Errorf(code codes.Code, format string, args ...interface{}) *TaskError {
	return &TaskError{Code: code, Message: fmt.Sprintf(format, args...), Retryable: true}
}

// Permanent is a failure that retrying cannot help: the task fails at once.
func Permanent(code codes.Code, format string, args ...interface{}) *TaskError {
	return &TaskError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// RefusedError is returned by Worker.Run when the server refused the worker's
// Hello: it would be refused again, so the worker does not reconnect.
type RefusedError struct {
	Code    codes.Code
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the server refused this worker (%s): %s", codeName(e.Code), e.Message)
}

// TaskFailedError is a task that ended FAILED or CANCELLED, from TaskHandle.Result.
type TaskFailedError struct {
	Task *taskwirev1.Task
	// Code of the last attempt's error (Canceled for a cancelled task).
	Code    codes.Code
	Message string
}

func (e *TaskFailedError) Error() string {
	if e.Task.GetState() == taskwirev1.TaskState_TASK_STATE_CANCELLED {
		return fmt.Sprintf("task %s was cancelled: %s", e.Task.GetId(), e.Message)
	}
	return fmt.Sprintf("task %s failed (%s): %s", e.Task.GetId(), codeName(e.Code), e.Message)
}

func failure(task *taskwirev1.Task) *TaskFailedError {
	if task.GetState() == taskwirev1.TaskState_TASK_STATE_CANCELLED {
		return &TaskFailedError{Task: task, Code: codes.Canceled, Message: task.GetCancelReason()}
	}
	failed := &TaskFailedError{Task: task, Code: codes.Unknown, Message: "no error recorded"}
	if n := len(task.GetErrors()); n > 0 {
		last := task.GetErrors()[n-1]
		failed.Code, failed.Message = codes.Code(last.GetCode()), last.GetMessage()
	}
	return failed
}

// codeName is the upper-case name gRPC uses on the wire (INVALID_ARGUMENT).
func codeName(code codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
		codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
		codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
		codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if name, ok := names[code]; ok {
		return name
	}
	return code.String()
}
