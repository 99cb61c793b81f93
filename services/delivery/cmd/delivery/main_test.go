package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunReportsEveryBadSettingAndHelpSucceeds(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"delivery", "-h"}, func(string) string { return "" }, &stderr); err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(stderr.String(), "BACHATA_DELIVERY_WINDOW") {
		t.Fatalf("usage does not name the environment variables:\n%s", stderr.String())
	}

	env := map[string]string{"BACHATA_DELIVERY_WINDOW": "0", "REDIS_URL": "http://x"}
	err := run(t.Context(), []string{"delivery", "-dedupe-ttl", "1s"}, func(k string) string { return env[k] }, &stderr)
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{"config", "window", "redis-url", "dedupe-ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
