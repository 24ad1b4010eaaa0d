package cli

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// NewLogger returns a logger that writes to w at level (--log-level) in
// format (--log-format): json, console, or "" for console when w is a
// terminal and json otherwise.
func NewLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	var l zapcore.Level
	if err := l.Set(level); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "console"
		}
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	case "console":
		enc = zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	default:
		return nil, fmt.Errorf("--log-format: %q is neither json nor console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), l)), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
