package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// CodeProfanity is this route's error code, in the range the protocol
// leaves to custom routes (10000–19999).
const CodeProfanity protocol.Code = 10001

// Profanity stops messages whose text contains a blocked word: the sender
// gets "<type>:error" with CodeProfanity and the message goes nowhere.
// Everything else passes on to the next route, so put it before the routes
// that deliver.
type Profanity struct {
	types map[string]bool
	words []string
}

// profanityOptions are the route's options in the routes file.
type profanityOptions struct {
	// Words are blocked, matched case-insensitively anywhere in the text.
	Words []string `json:"words"`
	// Types are checked; default ["direct"].
	Types []string `json:"types"`
}

// newProfanity is the route's factory for the registry.
func newProfanity(_ chain.Deps, options json.RawMessage) (chain.Route, error) {
	o := profanityOptions{Types: []string{"direct"}}
	if err := chain.DecodeOptions(options, &o); err != nil {
		return nil, err
	}
	if len(o.Words) == 0 {
		return nil, errors.New("profanity: options.words is empty")
	}
	p := &Profanity{types: make(map[string]bool)}
	for _, t := range o.Types {
		p.types[t] = true
	}
	for _, w := range o.Words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			p.words = append(p.words, w)
		}
	}
	return p, nil
}

// Name implements chain.Route.
func (*Profanity) Name() string { return "profanity" }

// Process implements chain.Route.
func (p *Profanity) Process(_ context.Context, req *chain.Request) (chain.Decision, error) {
	m := req.Message
	if !p.types[m.GetType()] {
		return chain.Pass(), nil
	}
	var data struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(m.GetData(), &data) != nil || data.Text == "" {
		return chain.Pass(), nil
	}
	text := strings.ToLower(data.Text)
	for _, w := range p.words {
		if strings.Contains(text, w) {
			return chain.Reject(&protocol.Error{Code: CodeProfanity, Text: "message refused: it contains a blocked word"}), nil
		}
	}
	return chain.Pass(), nil
}
