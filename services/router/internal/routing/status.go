package routing

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/services/router/chain"
)

// toStatus maps an error of route to the gRPC status the gateway sees. This
// is the one place errors become codes. The caller's own cancellation or
// deadline wins, so a gateway that gave up is not told to retry.
func toStatus(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	switch {
	case errors.Is(err, ErrBadRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrDelivery), errors.Is(err, chain.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	default:
		// A route failed in a way a resend will not fix (or a route bug):
		// the gateway answers 5000, not a retryable 5001.
		return status.Error(codes.Internal, err.Error())
	}
}
