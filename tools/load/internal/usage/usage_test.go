package usage

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProblemsReportEverythingAtOnce(t *testing.T) {
	t.Parallel()
	var p Problems
	require.NoError(t, p.Err())
	p.Addf(false, "never")
	p.Addf(true, "-rate %d: want more", 0)
	p.Flag("-gateways", nil)
	p.Flag("-gateways", errors.New("not loopback"))
	err := p.Err()
	require.ErrorIs(t, err, ErrUsage)
	require.EqualError(t, err, "usage: -rate 0: want more\nusage: -gateways: not loopback")
}

func TestNoArgs(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	require.NoError(t, fs.Parse([]string{"extra"}))
	require.ErrorIs(t, NoArgs(fs), ErrUsage)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, NoArgs(fs))
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, map[string]int{"sent": 1}))
	require.Equal(t, "{\n  \"sent\": 1\n}\n", b.String())
}
