package protocol

import (
	"testing"

	"github.com/bachata-chat/bachata/libs/entity"
)

// directFrame is a typical direct message: a UUID id, a full user dest and
// about 100 bytes of text.
var directFrame = []byte(`{"id":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41","type":"direct","dest":"@bob@localhost","data":{"text":"Hey Bob! Are we still on for lunch tomorrow at noon? I booked a table by the window, see you there."}}`)

// BenchmarkDirectRoundTrip is the per-message protocol work of the hot path:
// decode a client's frame, resolve its dest, stamp from and time, and encode
// the frame for the recipient.
func BenchmarkDirectRoundTrip(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(directFrame)))
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		f, err := Decode(directFrame)
		if err != nil {
			b.Fatal(err)
		}
		m := f.(*DataMessage)
		if _, err := entity.ResolveUser(m.Dest, "localhost"); err != nil {
			b.Fatal(err)
		}
		m.From = "@alice@localhost"
		m.Time = 1700000000123
		buf = AppendData(buf[:0], m)
	}
}

func BenchmarkDecodeDirect(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(directFrame)))
	for b.Loop() {
		if _, err := Decode(directFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	frame := []byte(`{"type":200,"data":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendData(b *testing.B) {
	f, err := Decode(directFrame)
	if err != nil {
		b.Fatal(err)
	}
	m := f.(*DataMessage)
	m.From, m.Time = "@alice@localhost", 1700000000123
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendData(buf[:0], m)
	}
}

func BenchmarkAppendTransport(b *testing.B) {
	t := &TransportMessage{Type: TransportReceived, Data: "9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41"}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTransport(buf[:0], t)
	}
}

func BenchmarkVerify(b *testing.B) {
	f, err := Decode(directFrame)
	if err != nil {
		b.Fatal(err)
	}
	m := f.(*DataMessage)
	m.Sign = Sign("session-key", m)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify("session-key", m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRejectNotJSON is the cost of answering garbage.
func BenchmarkDecodeRejectNotJSON(b *testing.B) {
	frame := []byte(`{"id":"9f1c","type":"direct","dest":"@bob@localhost","data":{"text":"hi"`)
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		_, err := Decode(frame)
		buf = AppendError(buf[:0], AsError(err))
	}
}
