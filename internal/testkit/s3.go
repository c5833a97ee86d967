package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snappipe/snappipe/internal/s3up"
)

// S3 is a real S3 implementation for tests: moto_server (the Python
// moto project's standalone server, the same S3 API surface boto3 is
// tested against), started as a child process on a free port. Chosen over
// an in-process Go fake because moto implements multipart uploads as S3
// does (ListMultipartUploads, part-size rules, NoSuchUpload) and is
// maintained against AWS's behaviour; the SDK talks to it over HTTP exactly
// as to S3.
type S3 struct {
	Endpoint string
	Client   *s3.Client
}

// StartS3 starts moto_server and sets the AWS credentials the SDK's
// default chain reads (dummy ones; moto accepts any). Without moto_server
// the test is skipped, except under CI where it must be there.
func StartS3(t *testing.T) *S3 {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("moto_server not found: the S3 tests need it (pip install 'moto[server]')")
		}
		t.Skip("moto_server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Ready when it answers; a generous bound only against a broken install.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("moto_server exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s", endpoint)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c, err := s3up.Client(context.Background(), s3up.Options{Endpoint: endpoint, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return &S3{Endpoint: endpoint, Client: c}
}

// Bucket creates a bucket.
func (s *S3) Bucket(t *testing.T, name string) {
	t.Helper()
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
}

// Objects lists a bucket's keys with their sizes.
func (s *S3) Objects(t *testing.T, bucket string) map[string]int64 {
	t.Helper()
	out, err := s.Client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, o := range out.Contents {
		m[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	return m
}

// Uploads counts the unfinished multipart uploads in a bucket.
func (s *S3) Uploads(t *testing.T, bucket string) int {
	t.Helper()
	out, err := s.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// Get reads an object whole.
func (s *S3) Get(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := s.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	var b []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := out.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return b
		}
	}
}
