// Package usage is what every scenario's flag parsing shares: one error
// for bad flags, a collector that reports every problem at once, and the
// JSON form of a report.
package usage

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage is wrapped by every error about the flags; the message says
// which flag and why.
var ErrUsage = errors.New("usage")

// Problems collects what is wrong with the flags, so one run reports all
// of it. The zero value is ready to use.
type Problems struct{ errs []error }

// Addf records a problem when cond holds.
func (p *Problems) Addf(cond bool, format string, a ...any) {
	if cond {
		p.errs = append(p.errs, fmt.Errorf("%w: "+format, append([]any{ErrUsage}, a...)...))
	}
}

// Flag records err, when not nil, as the problem of flag name.
func (p *Problems) Flag(name string, err error) {
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%w: %s: %w", ErrUsage, name, err))
	}
}

// Err is every problem recorded, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// NoArgs refuses arguments left after the flags.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return nil
}

// WriteJSON writes a report as indented JSON.
func WriteJSON(w io.Writer, report any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if err := e.Encode(report); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
