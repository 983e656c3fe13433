package evpn

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logger hands gobgp's log lines to slog, one level down: gobgp logs every
// failed connection attempt and state change as a warning or at info,
// which this backend reports itself (once per change); its errors become
// warnings, and the rest is for -log-level debug.
type logger struct{ l *slog.Logger }

func newLogger(l *slog.Logger) *logger { return &logger{l.With("bgp", "gobgp")} }

func (g *logger) emit(level slog.Level, msg string, fields gobgplog.Fields) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		attrs = append(attrs, k, v)
	}
	g.l.Log(ctx, level, msg, attrs...)
}

func (g *logger) Panic(msg string, f gobgplog.Fields) { g.emit(slog.LevelError, msg, f) }
func (g *logger) Fatal(msg string, f gobgplog.Fields) { g.emit(slog.LevelError, msg, f) }
func (g *logger) Error(msg string, f gobgplog.Fields) { g.emit(slog.LevelWarn, msg, f) }
func (g *logger) Warn(msg string, f gobgplog.Fields)  { g.emit(slog.LevelDebug, msg, f) }
func (g *logger) Info(msg string, f gobgplog.Fields)  { g.emit(slog.LevelDebug, msg, f) }
func (g *logger) Debug(msg string, f gobgplog.Fields) {}

// SetLevel is ignored: slog's level decides.
func (g *logger) SetLevel(gobgplog.LogLevel) {}

// GetLevel says info, so that gobgp does not build its debug lines.
func (g *logger) GetLevel() gobgplog.LogLevel { return gobgplog.InfoLevel }
