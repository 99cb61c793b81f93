package protocol_test

import (
	"errors"
	"fmt"

	"github.com/bachata-chat/bachata/libs/protocol"
)

func ExampleDecode() {
	f, err := protocol.Decode([]byte(`{"id":"m1","type":"direct","dest":"bob","data":{ "text": "hi" },"to":"dropped"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	switch m := f.(type) {
	case *protocol.DataMessage:
		m.From, m.Time = "@alice@localhost", 1700000000123 // the router's job
		fmt.Println(string(protocol.AppendData(nil, m)))
	case *protocol.TransportMessage:
		fmt.Println("transport", m.Type)
	}
	// Output:
	// {"id":"m1","type":"direct","time":1700000000123,"from":"@alice@localhost","dest":"bob","data":{"text":"hi"}}
}

func ExampleAppendError() {
	_, err := protocol.Decode([]byte(`{"id":"m1","type":"direct","dest":"@bob@localhost:0"}`))
	var pe *protocol.Error
	if errors.As(err, &pe) {
		fmt.Println(string(protocol.AppendError(nil, pe)))
	}
	// Output:
	// {"id":"m1","type":"direct:error","data":{"errCode":4006,"errText":"dest is not a valid entity ID or username: user ID server part: port \"0\": entity: invalid port","errPayload":{}}}
}

func ExampleSign() {
	m := &protocol.DataMessage{ID: "m1", Type: "direct", Dest: "bob", Data: []byte(`{"text":"hi"}`)}
	m.Sign = protocol.Sign("session-key-1", m)
	fmt.Println(m.Sign)
	fmt.Println(protocol.Verify("session-key-1", m))
	// Output:
	// d00e102a3ff5214e08493494bee3511fa22df8b0f24d64d759f3d70d9c369d92
	// <nil>
}

func ExampleCustomizedContent_SubjectSuffix() {
	c, err := protocol.ParseCustomizedContent([]byte(`{"app":"chat.dim.sechat","mod":"drift_bottle","act":"throw","extra":{}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.SubjectSuffix())
	// Output:
	// chat_dim_sechat.drift_bottle.throw
}
