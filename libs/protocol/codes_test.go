package protocol

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCodesTable(t *testing.T) {
	t.Parallel()
	codes := Codes()
	require.True(t, slices.IsSorted(codes))
	names := map[string]bool{}
	for _, c := range codes {
		require.True(t, c.Known(), "%d", c)
		require.NotEqual(t, "unknown", c.Name())
		require.False(t, names[c.Name()], "duplicate name %s", c.Name())
		names[c.Name()] = true
		require.NotEmpty(t, c.Text())
		require.True(t, c >= 4000 && c < 4300 || c >= 5000 && c < 5100, "%d outside the used ranges", c)
		require.Equal(t, strconv.Itoa(int(c))+" "+c.Name(), c.String())
	}
	var retryable []Code
	for _, c := range codes {
		if c.Retryable() {
			retryable = append(retryable, c)
		}
	}
	require.Equal(t, []Code{CodeAppNoResponder, CodeRateLimited, CodeUnavailable, CodeTimeout}, retryable)
	require.False(t, Code(4999).Known())
	require.Equal(t, "unknown", Code(4999).Name())
	require.Equal(t, "unknown error", Code(4999).Text())
	require.False(t, Code(4999).Retryable())
}

func readProtocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err, "docs/protocol.md is the client contract; keep it next to the code")
	return string(b)
}

// TestCodesDocumented keeps the code table in docs/protocol.md in step with
// this package: every code appears once with its name, retry flag and
// default text, and the doc lists no code the package lacks.
func TestCodesDocumented(t *testing.T) {
	t.Parallel()
	doc := readProtocolDoc(t)
	row := regexp.MustCompile("(?m)^\\| (\\d{4,5}) \\| `([a-z0-9_]+)` \\| (yes|no) \\| ([^|]+) \\|")
	documented := map[Code]bool{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		c := Code(n)
		require.True(t, c.Known(), "docs list unknown code %d", n)
		require.False(t, documented[c], "code %d listed twice", n)
		documented[c] = true
		require.Equal(t, c.Name(), m[2], "name of %d", n)
		require.Equal(t, c.Retryable(), m[3] == "yes", "retry flag of %d", n)
		require.Equal(t, c.Text(), strings.TrimSpace(m[4]), "default text of %d", n)
	}
	for _, c := range Codes() {
		require.True(t, documented[c], "code %s missing from docs/protocol.md", c)
	}
}

// TestDocExamplesDecode checks every line of every json block in
// docs/protocol.md: each is a frame this package decodes, except a frame
// shown with its error reply, which must be followed by exactly the reply
// AppendError produces for it.
func TestDocExamplesDecode(t *testing.T) {
	t.Parallel()
	var blocks [][]string
	sc := bufio.NewScanner(strings.NewReader(readProtocolDoc(t)))
	inJSON := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```json":
			inJSON = true
			blocks = append(blocks, nil)
		case strings.HasPrefix(line, "```"):
			inJSON = false
		case inJSON && strings.TrimSpace(line) != "":
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], line)
		}
	}
	require.NoError(t, sc.Err())
	n, rejected := 0, 0
	for _, lines := range blocks {
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			n++
			f, err := Decoder{AllowMissingID: true}.Decode([]byte(line))
			if err != nil {
				require.Less(t, i+1, len(lines), "doc example %q fails (%v) and shows no error reply", line, err)
				require.Equal(t, string(AppendError(nil, AsError(err))), lines[i+1], "error reply shown for %q", line)
				rejected++
				i++
				continue
			}
			checkDocFrame(t, line, f)
		}
	}
	require.Greater(t, n, 30, "expected the doc's examples")
	require.Positive(t, rejected)
}

func checkDocFrame(t *testing.T, line string, f Frame) {
	t.Helper()
	if m, ok := f.(*DataMessage); ok {
		if strings.HasSuffix(m.Type, ErrorSuffix) || m.Type == TypeError {
			_, err := ParseError(m)
			require.NoError(t, err, "doc error example %q", line)
		}
		if m.Type == TypeApp && m.Time == 0 {
			_, err := ParseCustomizedContent(m.Data)
			require.NoError(t, err, "doc app example %q", line)
		}
		if m.Type == TypeHandshake {
			_, err := ParseHandshake(m.Data)
			require.NoError(t, err, "doc handshake example %q", line)
		}
	}
	if strings.Contains(line, `"sign"`) {
		require.NoError(t, Verify("Zm9vYmFyLXNlc3Npb24ta2V5", f), "doc signature example %q", line)
	}
}
