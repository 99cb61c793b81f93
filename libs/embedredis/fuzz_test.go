package embedredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzReadCommand feeds the client protocol reader anything: it must not
// panic or allocate for lengths it was only told, and what it reads must
// read the same once written back as RESP.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\x00b\r\n",
		"PING\r\nECHO hi\n",
		"*2\r\n$3\r\nGET\r\n$999999999\r\n",
		"*-1\r\n*0\r\n\r\n",
		"*1\r\n+PING\r\n",
		"$3\r\nabc\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), readBufferSize)
		for {
			args, err := readCommand(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errProtocol) {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if len(args) == 0 {
				t.Fatal("empty command")
			}
			again, err := readCommand(bufio.NewReader(strings.NewReader(resp(args))))
			if err != nil || !reflect.DeepEqual(args, again) {
				t.Fatalf("%q read back as %q, %v", args, again, err)
			}
		}
	})
}

func resp(args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// FuzzScanJournal feeds the journal reader anything after the magic: it
// must not panic, and every record it accepts must encode back to bytes
// that read as the same records with nothing torn.
func FuzzScanJournal(f *testing.F) {
	valid := appendRecord(nil, record{clock: 1_700_000_000_000_000_000})
	valid = appendRecord(valid, record{db: 3, cmds: [][]string{{"SET", "k", "v"}, {"PEXPIRE", "k", "100"}}})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(append([]byte{}, valid...), 0, 0, 0, 0))
	f.Add(corruptCRC(append([]byte{}, valid...)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		content := append([]byte(magic), data...)
		var recs []record
		st, err := scanJournal(bytes.NewReader(content), int64(len(content)), func(r record) error {
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if st.records != len(recs) || st.tornBytes > int64(len(data)) {
			t.Fatalf("stats %+v for %d records of %d bytes", st, len(recs), len(data))
		}
		out := []byte(magic)
		for _, r := range recs {
			out = appendRecord(out, r)
		}
		var again []record
		st, err = scanJournal(bytes.NewReader(out), int64(len(out)), func(r record) error {
			again = append(again, r)
			return nil
		})
		if err != nil || st.tornBytes != 0 || !reflect.DeepEqual(recs, again) {
			t.Fatalf("records %v read back as %v (%+v, %v)", recs, again, st, err)
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []record{
		{clock: 1},
		{clock: 1<<62 + 5},
		{db: 0, cmds: [][]string{{"SET", "", ""}}},
		{db: maxDB, cmds: [][]string{{"SCRIPT", "LOAD", strings.Repeat("x", 70000)}, {"EVALSHA", "abc", "1", "k", "a\x00\r\n"}}},
	} {
		b := appendRecord(nil, r)
		got, err := decodeRecord(b[headerSize:])
		if err != nil || !reflect.DeepEqual(r, got) {
			t.Fatalf("%+v decoded as %+v, %v", r, got, err)
		}
	}
}
