// Package protocol is Bachata's client wire protocol (v1): decoding and
// encoding the JSON frames of docs/protocol.md, the one table of ":error"
// codes, signatures, and the DIMP handshake and customized content carried
// in a data message's "data".
//
// A frame is a *DataMessage (string "type") or a *TransportMessage (integer
// "type"). Decode checks everything a frame must satisfy before it reaches
// routing and reports each problem as an *Error with its Code; the Append
// functions encode with a fixed field order and no reflection. Decoding is a
// hand-written, non-recursive scanner because frames are outside input on
// the hottest path of the suite: it never panics, allocates only what it
// returns, and bounds size and nesting.
//
// Decisions a client can observe (all in docs/protocol.md):
//   - keys match case-sensitively ("FROM" is not "from");
//   - unknown top-level fields are dropped, never routed or forwarded
//     (extensions belong inside "data");
//   - duplicate top-level keys are rejected (4008);
//   - an integer "type" is a JSON number without fraction or exponent
//     (100.0 and 1e2 are 4002);
//   - null in an optional field (time, from, dest, sign) means absent;
//   - "data" is kept as the compact form of the bytes as sent, never
//     re-encoded, so signatures made with JSON.stringify verify.
package protocol
