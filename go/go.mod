module github.com/taskwire/taskwire/go

// Tested with Debian's Go 1.19, grpc-go 1.33.3, protobuf-go 1.28.1 and
// golang/protobuf 1.5.2, built in GOPATH mode (docs/go.md). With modules and
// a proxy, `go mod tidy` resolves these or newer.
go 1.19

require (
	github.com/golang/protobuf v1.5.2
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
