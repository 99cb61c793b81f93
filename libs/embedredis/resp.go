package embedredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what one client command may be, as redis-server's defaults.
const (
	// maxBulk bounds one argument (proto-max-bulk-len).
	maxBulk = 512 << 20
	// maxArgs bounds the arguments of one command.
	maxArgs = 1 << 20
	// readBufferSize bounds a protocol line: an array or bulk header, or a
	// whole inline command.
	readBufferSize = 64 << 10
)

// errProtocol means a client sent something that is not the Redis
// protocol; the connection is answered with an error and closed.
var errProtocol = errors.New("protocol error")

// readCommand reads one command: a RESP array of bulk strings, as every
// client library sends, or an inline command line, as typed into telnet.
// Empty lines and empty arrays are skipped, as redis-server does.
func readCommand(r *bufio.Reader) ([]string, error) {
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			continue
		}
		if line[0] != '*' {
			if f := strings.Fields(string(line)); len(f) > 0 {
				return f, nil
			}
			continue
		}
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n > maxArgs {
			return nil, fmt.Errorf("%w: invalid multibulk length", errProtocol)
		}
		if n <= 0 {
			continue
		}
		args := make([]string, 0, min(n, 64))
		for range n {
			arg, err := readBulk(r)
			if err != nil {
				return nil, err
			}
			args = append(args, arg)
		}
		return args, nil
	}
}

// readBulk reads "$<n>\r\n<n bytes>\r\n". The argument grows as its bytes
// arrive, so a claimed length alone allocates nothing.
func readBulk(r *bufio.Reader) (string, error) {
	line, err := readLine(r)
	if err != nil {
		return "", unexpected(err)
	}
	if len(line) == 0 || line[0] != '$' {
		return "", fmt.Errorf("%w: expected '$'", errProtocol)
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n < 0 || n > maxBulk {
		return "", fmt.Errorf("%w: invalid bulk length", errProtocol)
	}
	var b strings.Builder
	b.Grow(min(n, readBufferSize))
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		return "", unexpected(err)
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r, crlf[:]); err != nil {
		return "", unexpected(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return "", fmt.Errorf("%w: bulk not followed by CRLF", errProtocol)
	}
	return b.String(), nil
}

// readLine returns the next line without its "\r\n" (or "\n"). The slice is
// valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: line too long", errProtocol)
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// unexpected turns EOF in the middle of a command into ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Replies the executor looks at, in RESP2 and RESP3 spelling.
var (
	replyOK     = []byte("+OK\r\n")
	replyQueued = []byte("+QUEUED\r\n")
)

// isNull reports a nil reply: a null bulk string or array, or RESP3 null.
func isNull(b []byte) bool {
	return string(b) == "$-1\r\n" || string(b) == "*-1\r\n" || string(b) == "_\r\n"
}

// isError reports an error reply (simple, or RESP3 blob error).
func isError(b []byte) bool { return len(b) > 0 && (b[0] == '-' || b[0] == '!') }

// isArray reports a non-null array reply.
func isArray(b []byte) bool { return len(b) > 0 && b[0] == '*' && !isNull(b) }

// bulkString decodes a bulk string reply.
func bulkString(b []byte) (string, bool) {
	if len(b) < 4 || b[0] != '$' {
		return "", false
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return "", false
	}
	n, err := strconv.Atoi(string(b[1:i]))
	if err != nil || n < 0 || len(b) != i+2+n+2 {
		return "", false
	}
	return string(b[i+2 : i+2+n]), true
}
