package lease

import "errors"

// ErrInvalid is returned for a request that names no user, device, gateway
// or connection, names one that is too long or contains the separator
// 0x1f, or asks for more users or a longer lease than allowed. The caller
// must fix the request; retrying it cannot help.
var ErrInvalid = errors.New("invalid argument")

// ErrUnknownGateway is returned by Connect when the gateway holds no lease:
// it never sent a Heartbeat, or its lease expired and was swept. The gateway
// must Heartbeat, which answers known=false, and Connect every connection it
// holds again.
var ErrUnknownGateway = errors.New("gateway holds no lease")
