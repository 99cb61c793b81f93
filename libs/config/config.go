// Package config binds a service's settings to command-line flags and
// BACHATA_* environment variables. A flag wins over its variable, which wins
// over the default; every bad value is collected so a misconfigured service
// reports all of its problems at once, then exits non-zero.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Set is one service's settings: a flag set whose defaults come from the
// environment.
type Set struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// New returns an empty Set for the named program. getenv is usually os.Getenv;
// tests pass their own.
func New(program string, getenv func(string) string) *Set {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Set{fs: fs, getenv: getenv}
}

// Usage writes the flags, their variables and defaults to w.
func (s *Set) Usage(w io.Writer) {
	s.fs.SetOutput(w)
	s.fs.PrintDefaults()
	s.fs.SetOutput(io.Discard)
}

func (s *Set) env(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v := s.getenv(name)
	return v, v != ""
}

func usage(text, envName string) string {
	if envName == "" {
		return text
	}
	return text + " (env " + envName + ")"
}

// String binds a string setting.
func (s *Set) String(p *string, flagName, envName, def, text string) {
	if v, ok := s.env(envName); ok {
		def = v
	}
	s.fs.StringVar(p, flagName, def, usage(text, envName))
}

// Int binds an integer setting.
func (s *Set) Int(p *int, flagName, envName string, def int, text string) {
	if v, ok := s.env(envName); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not an integer", envName, v))
		} else {
			def = n
		}
	}
	s.fs.IntVar(p, flagName, def, usage(text, envName))
}

// Duration binds a duration setting written like "5s" or "250ms".
func (s *Set) Duration(p *time.Duration, flagName, envName string, def time.Duration, text string) {
	if v, ok := s.env(envName); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a duration (like 5s or 250ms)", envName, v))
		} else {
			def = d
		}
	}
	s.fs.DurationVar(p, flagName, def, usage(text, envName))
}

// Bool binds a boolean setting ("true", "false", "1", "0").
func (s *Set) Bool(p *bool, flagName, envName string, def bool, text string) {
	if v, ok := s.env(envName); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a boolean", envName, v))
		} else {
			def = b
		}
	}
	s.fs.BoolVar(p, flagName, def, usage(text, envName))
}

// ErrHelp is returned by Parse when -h or -help was given.
var ErrHelp = flag.ErrHelp

// Parse parses the command-line arguments (without the program name) and
// returns every problem found in the environment and the flags, joined.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ErrHelp
		}
		s.errs = append(s.errs, err)
	}
	if s.fs.NArg() > 0 {
		s.errs = append(s.errs, fmt.Errorf("unexpected arguments: %q", s.fs.Args()))
	}
	return errors.Join(s.errs...)
}

// Problems collects validation failures so all of them are reported together.
type Problems struct{ errs []error }

// Addf records a problem when cond is true.
func (p *Problems) Addf(cond bool, format string, args ...any) {
	if cond {
		p.errs = append(p.errs, fmt.Errorf(format, args...))
	}
}

// Err returns the problems joined, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
