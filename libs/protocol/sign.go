package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// SignPrefix starts the canonical form of signature v1. The version is in
// the signed bytes so a future form can never verify as this one.
const SignPrefix = "bachata-sign-v1\n"

// AppendCanonical appends the bytes that "sign" covers. For a data message:
//
//	"bachata-sign-v1\n" + id + "\n" + type + "\n" + dest + "\n" + data
//
// where data is the compact JSON of "data" as sent (empty when absent), the
// same bytes JSON.stringify(data) gives a JavaScript client. from and time
// are not covered: the server sets them. For a transport message:
//
//	"bachata-sign-v1\n" + type (decimal) + "\n" + data
func AppendCanonical(dst []byte, f Frame) []byte {
	switch m := f.(type) {
	case *DataMessage:
		dst = append(dst, SignPrefix...)
		dst = append(dst, m.ID...)
		dst = append(dst, '\n')
		dst = append(dst, m.Type...)
		dst = append(dst, '\n')
		dst = append(dst, m.Dest...)
		dst = append(dst, '\n')
		dst = append(dst, m.Data...)
	case *TransportMessage:
		dst = append(dst, SignPrefix...)
		dst = strconv.AppendInt(dst, int64(m.Type), 10)
		dst = append(dst, '\n')
		dst = append(dst, m.Data...)
	}
	return dst
}

// Sign returns the lowercase hex HMAC-SHA256 of f's canonical form keyed by
// the session key (its bytes as a string). It ignores f's own sign.
func Sign(sessionKey string, f Frame) string {
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac(sessionKey, f, sum[:0]))
}

// Verify checks f's sign against the session key in constant time. An
// unsigned frame is CodeSignRequired (callers verify only when signing is
// required or a sign is present); a malformed or wrong sign, or an empty
// key, is CodeSignInvalid. Hex digits may be of either case.
func Verify(sessionKey string, f Frame) error {
	var sign string
	switch m := f.(type) {
	case *DataMessage:
		sign = m.Sign
	case *TransportMessage:
		sign = m.Sign
	default:
		return Errorf(CodeSignInvalid, "nothing to verify")
	}
	if sign == "" {
		return NewError(CodeSignRequired)
	}
	if sessionKey == "" {
		return Errorf(CodeSignInvalid, "no session key")
	}
	var got [sha256.Size]byte
	if len(sign) != hex.EncodedLen(sha256.Size) {
		return Errorf(CodeSignInvalid, "sign must be %d hex digits", hex.EncodedLen(sha256.Size))
	}
	if _, err := hex.Decode(got[:], []byte(sign)); err != nil {
		return Errorf(CodeSignInvalid, "sign is not hex")
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(got[:], mac(sessionKey, f, sum[:0])) {
		return NewError(CodeSignInvalid)
	}
	return nil
}

func mac(sessionKey string, f Frame, dst []byte) []byte {
	h := hmac.New(sha256.New, []byte(sessionKey))
	var buf [512]byte
	h.Write(AppendCanonical(buf[:0], f))
	return h.Sum(dst)
}
