package bootstrap

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/rs/zerolog"
)

// NewLogger returns a JSON zerolog logger at the named level ("debug",
// "info", "warn", "error"; anything else means info).
func NewLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).Hook(rfc3339NanoTime{})
}

// rfc3339NanoTime adds the time to each event in RFC 3339 with nanoseconds.
// It replaces setting zerolog.TimeFieldFormat, a global that loggers already
// in use read (a data race when members start in one process).
type rfc3339NanoTime struct{}

func (rfc3339NanoTime) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(time.RFC3339Nano))
}

// SlogHandler bridges slog records (protoactor-go logs with slog) into zl.
// Records below minLevel are dropped: protoactor logs dead letters and
// connection churn at Info, which is noise at the member's Info level.
func SlogHandler(zl zerolog.Logger, minLevel slog.Level) slog.Handler {
	return &slogBridge{zl: zl, min: minLevel}
}

type slogBridge struct {
	zl    zerolog.Logger
	min   slog.Level
	attrs []slog.Attr
	group string
}

func (h *slogBridge) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *slogBridge) Handle(_ context.Context, r slog.Record) error {
	var ev *zerolog.Event
	switch {
	case r.Level >= slog.LevelError:
		ev = h.zl.Error()
	case r.Level >= slog.LevelWarn:
		ev = h.zl.Warn()
	case r.Level >= slog.LevelInfo:
		ev = h.zl.Info()
	default:
		ev = h.zl.Debug()
	}
	ev = ev.Str("component", "protoactor")
	for _, a := range h.attrs {
		ev = ev.Str(h.key(a.Key), a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Str(h.key(a.Key), a.Value.String())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h *slogBridge) key(k string) string {
	if h.group == "" {
		return k
	}
	return h.group + "." + k
}

func (h *slogBridge) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *slogBridge) WithGroup(name string) slog.Handler {
	c := *h
	c.group = h.key(name)
	return &c
}
