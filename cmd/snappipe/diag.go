package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/snappipe/snappipe/pipeline/config"
)

// diagPrinter prints diagnostics; on a terminal it adds the offending
// source line with a caret under the column, as compilers do.
type diagPrinter struct {
	caret bool
	files map[string][]string
}

func newDiagPrinter(w io.Writer, g *globalOptions) *diagPrinter {
	return &diagPrinter{caret: isTTY(w), files: map[string][]string{}}
}

func (p *diagPrinter) print(w io.Writer, d config.Diagnostic) {
	fmt.Fprintln(w, d.String())
	if !p.caret || d.Line < 1 {
		return
	}
	lines, ok := p.files[d.File]
	if !ok {
		if b, err := os.ReadFile(d.File); err == nil {
			lines = config.SourceLines(b)
		}
		p.files[d.File] = lines
	}
	if d.Line > len(lines) {
		return
	}
	fmt.Fprint(w, caretLines(lines[d.Line-1], d.Line, d.Column))
}

// caretLines renders "  12 | text" and a caret under column col (1-based,
// counted in runes; tabs are kept so the caret lines up).
func caretLines(text string, line, col int) string {
	num := fmt.Sprintf("%5d | ", line)
	var pad strings.Builder
	for i, r := range []rune(text) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteRune(' ')
		}
	}
	return fmt.Sprintf("%s%s\n%s%s^\n", num, text, strings.Repeat(" ", len(num)-2)+"| ", pad.String())
}

// printWarnings prints a loaded config's warnings (they do not stop it).
func printWarnings(g *globalOptions, cfg *config.Config) {
	if len(cfg.Warnings) == 0 || g.output == "json" {
		return
	}
	dp := newDiagPrinter(g.stderr, g)
	for _, d := range cfg.Warnings {
		dp.print(g.stderr, d)
	}
}

// formatBytes renders a byte count for people.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
