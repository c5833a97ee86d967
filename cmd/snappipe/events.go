package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// uiVersion is the version of the --output json event contract.
const uiVersion = "1.0"

// events reports progress: NDJSON on stdout with --output json, else a
// stats line on stderr every few seconds (and at the end).
type events struct {
	g      *globalOptions
	log    *slog.Logger
	mu     sync.Mutex
	out    io.Writer
	prog   map[string][3]int64 // done, total, last-reported
	units  map[string]string
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	start  time.Time
	quiet  bool
	period time.Duration
	// bars draws mpb progress bars on a terminal instead of stats lines.
	bars  *mpb.Progress
	barOf map[string]*mpb.Bar
}

func newEvents(g *globalOptions, log *slog.Logger) *events {
	e := &events{g: g, log: log, prog: map[string][3]int64{}, units: map[string]string{}, stop: make(chan struct{}), start: time.Now(), period: 2 * time.Second}
	if g.output == "json" {
		e.out = g.stdout
		e.emit(map[string]any{"type": "version", "ui": uiVersion, "snappipe": version})
	}
	e.quiet = g.progress == "never"
	tty := os.Getenv("CI") == "" && isTTY(g.stderr)
	if e.out == nil && !e.quiet && (g.progress == "always" || g.progress == "auto" && tty) {
		opts := []mpb.ContainerOption{mpb.WithOutput(g.stderr), mpb.WithWidth(40), mpb.WithRefreshRate(200 * time.Millisecond)}
		if !tty {
			// always, without a terminal (| tee): mpb would draw nothing
			// and keep the log lines it holds for the next frame forever.
			// Its lines are cut at the container width (no terminal to
			// ask): room for the name, counters, rate and ETA.
			opts = append(opts, mpb.WithAutoRefresh(), mpb.WithWidth(120))
		}
		e.bars = mpb.New(opts...)
		e.barOf = map[string]*mpb.Bar{}
		e.quiet = true // the bars replace the stats lines
	}
	if !e.quiet {
		e.wg.Add(1)
		go e.ticker()
	}
	return e
}

func (e *events) emit(m map[string]any) {
	if e.out == nil {
		return
	}
	m["@timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	line := encodeEvent(m)
	e.mu.Lock()
	e.out.Write(line)
	e.mu.Unlock()
}

func (e *events) StageStarted(node string) {
	e.emit(map[string]any{"type": "stage_started", "stage": node})
}

func (e *events) StageFinished(node string, err error) {
	// A stage's last progress comes before its end, not at the next tick.
	e.flushProgress(node)
	m := map[string]any{"type": "stage_finished", "stage": node, "ok": err == nil}
	if err != nil {
		m["error"] = err.Error()
	}
	e.emit(m)
}

func (e *events) Progress(node string, done, total int64, unit string) {
	if e.bars != nil {
		e.bar(node, done, total, unit)
	}
	e.mu.Lock()
	p := e.prog[node]
	p[0], p[1] = done, total
	e.prog[node] = p
	e.units[node] = unit
	e.mu.Unlock()
}

// flushProgress emits node's progress event now if it changed since the
// last one (NDJSON output; the stats lines keep their period).
func (e *events) flushProgress(node string) {
	if e.out == nil {
		return
	}
	e.mu.Lock()
	p, ok := e.prog[node]
	if !ok || p[0] == p[2] {
		e.mu.Unlock()
		return
	}
	p[2] = p[0]
	e.prog[node] = p
	unit := e.units[node]
	e.mu.Unlock()
	e.emit(progressEvent(node, p, unit))
}

// progressEvent is a stage's progress as an NDJSON event.
func progressEvent(node string, p [3]int64, unit string) map[string]any {
	return map[string]any{"type": "progress", "stage": node, "done": p[0], "total": p[1], "unit": unit}
}

func (e *events) ticker() {
	defer e.wg.Done()
	t := time.NewTicker(e.period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.report(false)
		case <-e.stop:
			e.report(true)
			return
		}
	}
}

// report prints what changed since the last report.
func (e *events) report(final bool) {
	e.mu.Lock()
	nodes := make([]string, 0, len(e.prog))
	for n := range e.prog {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var parts []string
	var evs []map[string]any
	elapsed := time.Since(e.start).Seconds()
	for _, n := range nodes {
		p := e.prog[n]
		if p[0] == p[2] && !final {
			continue
		}
		if p[0] == p[2] && final {
			continue
		}
		p[2] = p[0]
		e.prog[n] = p
		if e.units[n] == "wait" {
			if p[0] < 1 {
				parts = append(parts, fmt.Sprintf("%s creating on the server (%.0fs)", n, elapsed))
			}
			evs = append(evs, progressEvent(n, p, "wait"))
			continue
		}
		rate := float64(p[0]) / max(elapsed, 1e-3)
		total := "?"
		if p[1] >= 0 {
			total = fmt.Sprint(p[1])
		}
		parts = append(parts, fmt.Sprintf("%s %d/%s %s (%.0f/s)", n, p[0], total, e.units[n], rate))
		evs = append(evs, progressEvent(n, p, e.units[n]))
	}
	e.mu.Unlock()
	for _, ev := range evs {
		e.emit(ev)
	}
	if len(parts) > 0 && e.out == nil {
		fmt.Fprintf(e.g.stderr, "progress: %s\n", strings.Join(parts, ", "))
	}
}

// logWriter is where log lines go: above the bars while they are drawn
// (mpb prints them before the next frame, so a bar is never repeated and a
// line is never cut), else stderr.
func (e *events) logWriter() io.Writer {
	if e.bars != nil {
		return &barsWriter{e: e}
	}
	return e.g.stderr
}

type barsWriter struct{ e *events }

func (w *barsWriter) Write(p []byte) (int, error) {
	n, err := w.e.bars.Write(p)
	if err != nil {
		// The bars are gone (the run is ending): write directly.
		return w.e.g.stderr.Write(p)
	}
	return n, nil
}

// bar updates (creating on first use) the progress bar of a node.
func (e *events) bar(node string, done, total int64, unit string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.barOf[node]
	if !ok && unit == "wait" {
		// Work of unknown length (snapshot creation): a spinner with the
		// time elapsed.
		b = e.bars.AddSpinner(0, mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-18s", node)), decor.Name("creating on the server ")),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_MMSS)))
		e.barOf[node] = b
		ok = true
	}
	if unit == "wait" {
		if total > 0 && done >= total {
			b.SetTotal(total, true)
		}
		return
	}
	if !ok {
		counters := decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)
		speed := decor.AverageSpeed(nil, "%.0f/s", decor.WCSyncWidth)
		if unit == "bytes" {
			counters = decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)
			speed = decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncWidth)
		}
		b = e.bars.AddBar(max(total, 0),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-18s", node)), counters),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncWidth), decor.Name(" "), speed, decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
		e.barOf[node] = b
	}
	if total >= 0 {
		b.SetTotal(total, false)
	}
	b.SetCurrent(done)
}

// Close stops the ticker after a final report, and completes or drops the
// bars. Safe to call twice.
func (e *events) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.wg.Wait()
		if e.bars != nil {
			e.mu.Lock()
			for node, b := range e.barOf {
				p := e.prog[node]
				if p[1] >= 0 && p[0] >= p[1] {
					b.SetTotal(p[1], true)
				} else {
					b.Abort(false)
				}
			}
			e.mu.Unlock()
			e.bars.Wait()
		}
	})
}

// Summary emits the final summary event.
func (e *events) Summary(s *pipeline.Summary, elapsed time.Duration) error {
	e.emit(map[string]any{"type": "summary", "points_written": s.PointsWritten, "batches_sent": s.BatchesSent,
		"bytes_fetched": s.BytesFetched, "snapshot_name": s.SnapshotName, "snapshot_path": s.SnapshotPath,
		"snapshot_size": s.SnapshotSize, "snapshot_sha256": s.SnapshotSHA256, "resumed": s.Resumed, "seconds": elapsed.Seconds()})
	return nil
}

var _ pipeline.Events = (*events)(nil)

// encodeEvent writes one NDJSON line with "type" first, then the other
// keys sorted, so the stream is stable and easy to grep.
func encodeEvent(m map[string]any) []byte {
	var b strings.Builder
	b.WriteString("{")
	t, _ := marshalNoEscape(m["type"])
	b.WriteString(`"type":`)
	b.Write(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "type" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		kb, _ := marshalNoEscape(k)
		vb, err := marshalNoEscape(m[k])
		if err != nil {
			vb = []byte(`null`)
		}
		b.WriteString(",")
		b.Write(kb)
		b.WriteString(":")
		b.Write(vb)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// marshalNoEscape is json.Marshal without HTML escaping (no \u003c).
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
