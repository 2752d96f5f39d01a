package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/floodgate/floodgate/internal/exitcode"
)

// logFlags are the logging flags every long-running role takes.
type logFlags struct {
	level, format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", l.level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", l.format)
}

// parse parses a subcommand's flags; it returns an exit code > 0 when the caller
// should stop (0 after -h).
// parseLogged registers the -log-level and -log-format flags on fs, parses args
// and builds the logger they ask for, writing to stderr. stop says the command ends
// here with code: 0 after -h, 2 after a bad flag or argument.
func parseLogged(fs *flag.FlagSet, args []string, stderr io.Writer) (log *slog.Logger, stop bool, code int) {
	var lf logFlags
	lf.register(fs)
	if stop, code := parse(fs, args, stderr); stop {
		return nil, true, code
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, true, exitcode.Failure
	}
	return log, false, 0
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (stop bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, 0
		}
		return true, exitcode.Failure
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return true, exitcode.Failure
	}
	return false, 0
}
