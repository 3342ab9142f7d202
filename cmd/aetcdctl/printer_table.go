package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/aetcd/aetcd/messages"
)

// tablePrinter is etcdctl's "table" format, which only endpoint (and
// member) commands support.
type tablePrinter struct {
	unsupportedPrinter
	w io.Writer
}

func (p *tablePrinter) EndpointStatus(statuses []endpointStatus) error {
	header, rows := endpointStatusTable(statuses)
	_, err := io.WriteString(p.w, renderTable(header, rows))
	return err
}

func (p *tablePrinter) MemberList(r *messages.MemberListResponse) error {
	header, rows := memberListTable(r)
	_, err := io.WriteString(p.w, renderTable(header, rows))
	return err
}

// maxCellWidth is the width beyond which a cell's text is wrapped.
const maxCellWidth = 30

// renderTable draws header and rows the way etcdctl's table writer
// (github.com/olekukonko/tablewriter v0.0.5 with etcdctl's settings: right
// aligned, borders, upper-case centred header, automatic wrapping) does.
func renderTable(header []string, rows [][]string) string {
	widths := make([]int, len(header))
	cells := func(row []string) [][]string {
		out := make([][]string, len(row))
		for i, text := range row {
			var w int
			out[i], w = wrapCell(text)
			widths[i] = max(widths[i], w)
		}
		return out
	}
	head := cells(header)
	body := make([][][]string, len(rows))
	for i, row := range rows {
		body[i] = cells(row)
	}

	var b strings.Builder
	line := func() {
		b.WriteString("+")
		for _, w := range widths {
			b.WriteString(strings.Repeat("-", w+2) + "+")
		}
		b.WriteString("\n")
	}
	print := func(row [][]string, align func(string, int) string) {
		height := 0
		for _, c := range row {
			height = max(height, len(c))
		}
		for l := range height {
			b.WriteString("|")
			for i, c := range row {
				text := "  " // tablewriter pads short cells with this
				if l < len(c) {
					text = c[l]
				}
				b.WriteString(" " + align(text, widths[i]) + " |")
			}
			b.WriteString("\n")
		}
	}
	line()
	for i := range head {
		for j := range head[i] {
			head[i][j] = strings.ToUpper(head[i][j])
		}
	}
	print(head, padCenter)
	line()
	for _, row := range body {
		print(row, padLeft)
	}
	line()
	return b.String()
}

func width(s string) int { return utf8.RuneCountInString(s) }

func padLeft(s string, w int) string {
	if gap := w - width(s); gap > 0 {
		return strings.Repeat(" ", gap) + s
	}
	return s
}

func padCenter(s string, w int) string {
	gap := w - width(s)
	if gap <= 0 {
		return s
	}
	left := gap / 2
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", gap-left)
}

// wrapCell lays a cell's text out in lines and returns them with the
// column width they need, as tablewriter does with its defaults (automatic
// wrapping, reflowed text): the lines are joined into one paragraph and
// broken at spaces to the width of the widest line, at most maxCellWidth.
// A wrapped cell widens its column to maxCellWidth.
func wrapCell(text string) ([]string, int) {
	raw := strings.Split(text, "\n")
	limit := 0
	for _, line := range raw {
		limit = max(limit, width(line))
	}
	limit = min(limit, maxCellWidth)
	lines := wrapWords(strings.Split(strings.Join(raw, " "), " "), limit)
	w := limit
	for _, line := range lines {
		w = max(w, width(line))
	}
	return lines, w
}

// wrapWords is tablewriter's WrapString: it breaks words into lines of at
// most limit (or the longest word) minimising the sum of squared slack.
func wrapWords(words []string, limit int) []string {
	for _, w := range words {
		limit = max(limit, width(w))
	}
	n := len(words)
	length := func(i, j int) int { // width of words[i..j] joined by spaces
		l := j - i
		for k := i; k <= j; k++ {
			l += width(words[k])
		}
		return l
	}
	const penalty = 1e5
	breakAt := make([]int, n)
	cost := make([]int, n)
	for i := n - 1; i >= 0; i-- {
		cost[i] = math.MaxInt32
		if length(i, n-1) <= limit {
			cost[i], breakAt[i] = 0, n
			continue
		}
		for j := i + 1; j < n; j++ {
			d := limit - length(i, j-1)
			c := d*d + cost[j]
			if length(i, j-1) > limit {
				c += penalty
			}
			if c < cost[i] {
				cost[i], breakAt[i] = c, j
			}
		}
	}
	var lines []string
	for i := 0; i < n; i = breakAt[i] {
		lines = append(lines, strings.Join(words[i:breakAt[i]], " "))
	}
	return lines
}

// humanizeBytes is go-humanize's Bytes (SI units), which etcdctl uses.
func humanizeBytes(s uint64) string {
	if s < 10 {
		return fmt.Sprintf("%d B", s)
	}
	sizes := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	e := math.Floor(math.Log(float64(s)) / math.Log(1000))
	val := math.Floor(float64(s)/math.Pow(1000, e)*10+0.5) / 10
	if val < 10 {
		return fmt.Sprintf("%.1f %s", val, sizes[int(e)])
	}
	return fmt.Sprintf("%.0f %s", val, sizes[int(e)])
}
