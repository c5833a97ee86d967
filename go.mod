module github.com/snappipe/snappipe

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/qdrant/go-client v1.17.1
	github.com/x448/float16 v0.8.4
	google.golang.org/grpc v1.78.0
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.50.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.34.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260209200024-4cfbd4190f57 // indirect
)
