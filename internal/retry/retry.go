// Package retry is snappipe's one retry policy, shared by every HTTP and
// gRPC call that may be retried: an operation's error is either permanent
// (returned at once), transient (retried after an exponential, jittered
// backoff), or transient with a server-given wait (Retry-After, Qdrant's
// retry-after), within an attempt cap and an elapsed-time cap. The backoff
// itself is github.com/cenkalti/backoff/v5's.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy bounds the retries of one operation.
type Policy struct {
	// MaxAttempts is the number of attempts, the first included (>= 1;
	// 0 means 5).
	MaxAttempts int
	// MaxElapsed stops retrying once the next wait would end after this
	// long since the first attempt (0: no time cap).
	MaxElapsed time.Duration
	// Initial and Max shape the exponential backoff (defaults 200ms and
	// 10s); each wait is randomised by ±50%.
	Initial, Max time.Duration
	// Notify, if set, is called before each wait with the attempt that
	// failed, its error and the wait.
	Notify func(attempt int, err error, wait time.Duration)
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (e *permanent) Error() string { return e.err.Error() }
func (e *permanent) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (nil stays nil).
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanent{err}
}

// IsPermanent says whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// after is a transient error that names its wait.
type after struct {
	err error
	d   time.Duration
}

func (e *after) Error() string { return e.err.Error() }
func (e *after) Unwrap() error { return e.err }

// After marks err as transient, to be retried after d (the server's
// Retry-After) plus up to 100ms of jitter, instead of the backoff's next
// wait.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &after{err, max(d, 0)}
}

// WaitOf returns the wait an After error asks for.
func WaitOf(err error) (time.Duration, bool) {
	var a *after
	if errors.As(err, &a) {
		return a.d, true
	}
	return 0, false
}

// GaveUp is returned when the policy's caps end the retries; it wraps the
// last error.
type GaveUp struct {
	Attempts int
	Elapsed  time.Duration
	Err      error
}

func (e *GaveUp) Error() string {
	return fmt.Sprintf("giving up after %d attempts in %s: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}
func (e *GaveUp) Unwrap() error { return e.Err }

// Do runs op until it succeeds, fails permanently, the context ends, or
// the policy's caps are reached (a *GaveUp wrapping the last error). op
// gets the attempt number, from 1. A permanent error is returned as op
// gave it (still marked, so callers up the stack do not retry it either).
func Do(ctx context.Context, p Policy, op func(attempt int) error) error {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 5
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	if b.InitialInterval <= 0 {
		b.InitialInterval = 200 * time.Millisecond
	}
	b.MaxInterval = p.Max
	if b.MaxInterval <= 0 {
		b.MaxInterval = 10 * time.Second
	}
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	attempt := 0
	start := time.Now()
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := op(attempt)
		last = err
		switch {
		case err == nil:
			return struct{}{}, nil
		case IsPermanent(err):
			// backoff unwraps its own Permanent; keep ours on the error.
			return struct{}{}, backoff.Permanent(err)
		case ctx.Err() != nil:
			return struct{}{}, backoff.Permanent(err)
		}
		if d, ok := WaitOf(err); ok {
			// Up to 100ms of jitter, so clients told the same wait do not
			// all come back at once.
			return struct{}{}, &retryAfter{err: err, d: d + time.Duration(rand.Int64N(int64(100*time.Millisecond)))}
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(p.MaxAttempts)),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, d time.Duration) {
			if p.Notify != nil {
				p.Notify(attempt, unwrapAfter(err), d)
			}
		}))
	if err == nil {
		return nil
	}
	err = unwrapAfter(err)
	if IsPermanent(err) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if last != nil && errors.Is(err, last) {
		return &GaveUp{Attempts: attempt, Elapsed: time.Since(start), Err: last}
	}
	return err
}

// retryAfter carries a server-given wait to backoff.Retry, which looks
// for *backoff.RetryAfterError.
type retryAfter struct {
	err error
	d   time.Duration
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) As(target any) bool {
	if t, ok := target.(**backoff.RetryAfterError); ok {
		*t = &backoff.RetryAfterError{Duration: e.d}
		return true
	}
	return false
}

func unwrapAfter(err error) error {
	var r *retryAfter
	if errors.As(err, &r) {
		return r.err
	}
	return err
}
