package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/bachata-chat/bachata/libs/natsx"
)

// Spec names one route of a chain and its options, as written in a routes
// file.
type Spec struct {
	// Route is the registered name of the route.
	Route string `json:"route"`
	// Options are the route's own settings; each route documents them.
	Options json.RawMessage `json:"options,omitempty"`
}

// File is a routes file: the chain in order, for example
//
//	{"routes": [
//	  {"route": "handshake"},
//	  {"route": "ephemeral", "options": {"types": ["typing"]}},
//	  {"route": "direct"}
//	]}
type File struct {
	Routes []Spec `json:"routes"`
}

// DefaultSpecs is the chain used when no routes file is given.
func DefaultSpecs() []Spec {
	return []Spec{{Route: "handshake"}, {Route: "ephemeral"}, {Route: "app"}, {Route: "group"}, {Route: "direct"}}
}

// NeedsNATS reports whether a chain of specs has a route that talks to
// NATS, so the router connects only then.
func NeedsNATS(specs []Spec) bool {
	for _, s := range specs {
		if s.Route == "app" {
			return true
		}
	}
	return false
}

// ParseFile reads a routes file. Unknown fields are errors, so a typo in a
// route's name or an option is reported instead of silently ignored.
func ParseFile(data []byte) (File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("routes file: %w", err)
	}
	if dec.More() {
		return File{}, errors.New("routes file: trailing data after the JSON object")
	}
	if len(f.Routes) == 0 {
		return File{}, errors.New("routes file: no routes: a chain without routes rejects every message")
	}
	return f, nil
}

// Deps are what a route factory may use.
type Deps struct {
	// ServerName is the server part of this suite's entity IDs.
	ServerName string
	// Logger is the router's logger.
	Logger *slog.Logger
	// NATS carries requests to application backends (the "app" route);
	// nil when the router has no NATS connection.
	NATS Requester
	// Subjects names the NATS subjects.
	Subjects natsx.Subjects
	// Members checks room membership (the "group" route); the delivery
	// service's GroupService.
	Members MemberChecker
	// Extra carries dependencies of routes registered by embedders, by a
	// key they choose.
	Extra map[string]any
}

// Factory builds a route from its options (nil when none were given).
type Factory func(deps Deps, options json.RawMessage) (Route, error)

// Registry maps route names to factories, so a chain can be assembled
// from configuration.
type Registry struct {
	factories map[string]Factory
}

// ErrUnknownRoute means a spec names a route nobody registered.
var ErrUnknownRoute = errors.New("chain: unknown route")

// NewRegistry returns a registry holding the built-in routes:
//
//   - "handshake": no options;
//   - "direct": no options;
//   - "ephemeral": {"types": ["typing", …]} (default DefaultEphemeralTypes);
//   - "app": {"timeout": "5s"} (default DefaultAppTimeout); needs Deps.NATS;
//   - "group": no options; needs Deps.Members;
//   - "hook": {"name": "spam-filter", "target": "host:port", "types": […],
//     "timeout": "200ms", "failure": "closed"|"open"}, a Hook calling a
//     RouteHookService; name and target are required, the rest default as
//     in NewHook. A chain may hold several, each with its own name.
func NewRegistry() *Registry {
	r := &Registry{factories: make(map[string]Factory)}
	r.factories["handshake"] = func(_ Deps, o json.RawMessage) (Route, error) {
		return NewHandshake(), noOptions("handshake", o)
	}
	r.factories["direct"] = func(d Deps, o json.RawMessage) (Route, error) {
		return NewDirect(d.ServerName), noOptions("direct", o)
	}
	r.factories["ephemeral"] = func(d Deps, o json.RawMessage) (Route, error) {
		opts := struct {
			Types []string `json:"types"`
		}{Types: DefaultEphemeralTypes}
		if err := DecodeOptions(o, &opts); err != nil {
			return nil, fmt.Errorf("ephemeral: %w", err)
		}
		return NewEphemeral(d.ServerName, opts.Types...)
	}
	r.factories["group"] = func(d Deps, o json.RawMessage) (Route, error) {
		if d.Members == nil {
			return nil, errors.New("group: needs the membership service")
		}
		return NewGroup(d.ServerName, d.Members), noOptions("group", o)
	}
	r.factories["hook"] = newHookRoute
	r.factories["app"] = func(d Deps, o json.RawMessage) (Route, error) {
		opts := struct {
			Timeout string `json:"timeout"`
		}{}
		if err := DecodeOptions(o, &opts); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		timeout := DefaultAppTimeout
		if opts.Timeout != "" {
			t, err := time.ParseDuration(opts.Timeout)
			if err != nil || t <= 0 {
				return nil, fmt.Errorf("app: timeout %q: want a positive duration like \"5s\"", opts.Timeout)
			}
			timeout = t
		}
		if d.NATS == nil {
			return nil, errors.New("app: needs a NATS connection")
		}
		return NewApp(d.NATS, d.Subjects, WithAppTimeout(timeout), WithAppLogger(d.Logger))
	}
	return r
}

// Register adds a route factory under name; a name can be registered once.
func (r *Registry) Register(name string, f Factory) error {
	if name == "" || f == nil {
		return errors.New("chain: register: a name and a factory are required")
	}
	if _, ok := r.factories[name]; ok {
		return fmt.Errorf("chain: register %q: %w: already registered", name, ErrBadRoute)
	}
	r.factories[name] = f
	return nil
}

// Names lists the registered routes, sorted.
func (r *Registry) Names() []string {
	names := slices.Collect(maps.Keys(r.factories))
	sort.Strings(names)
	return names
}

// Build assembles a chain from specs, in order, reporting every bad spec
// at once. When it fails, it closes the routes it built (see Chain.Close).
func (r *Registry) Build(deps Deps, specs []Spec) (*Chain, error) {
	var (
		routes []Route
		errs   []error
	)
	for i, s := range specs {
		f, ok := r.factories[s.Route]
		if !ok {
			errs = append(errs, fmt.Errorf("route %d %q: %w (known: %v)", i+1, s.Route, ErrUnknownRoute, r.Names()))
			continue
		}
		route, err := f(deps, s.Options)
		if err != nil {
			errs = append(errs, fmt.Errorf("route %d %q: %w", i+1, s.Route, err))
			continue
		}
		routes = append(routes, route)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, closeRoutes(routes))
	}
	c, err := New(routes...)
	if err != nil {
		return nil, errors.Join(err, closeRoutes(routes))
	}
	return c, nil
}

// DecodeOptions decodes a route's options into v strictly (unknown fields
// are errors); nil options leave v as it is.
func DecodeOptions(options json.RawMessage, v any) error {
	if len(options) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(options))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}

func noOptions(route string, o json.RawMessage) error {
	if len(o) == 0 || string(bytes.TrimSpace(o)) == "{}" || string(bytes.TrimSpace(o)) == "null" {
		return nil
	}
	return fmt.Errorf("%s takes no options", route)
}
