package main

// Rejection: an answer the gateway gives itself (the runtime's ServiceError): a status code, a precise message and
// google.rpc details (BadRequest field violations for bad input, RetryInfo when overloaded).

import (
	"fmt"
	"time"

	"github.com/golang/protobuf/ptypes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type Rejection struct {
	st *status.Status
}

func (r *Rejection) Error() string              { return r.st.Message() }
func (r *Rejection) GRPCStatus() *status.Status { return r.st }

func reject(code codes.Code, message string) *Rejection {
	return &Rejection{st: status.New(code, shortened(message, 1000))} // bounded: it travels in a header
}

// invalidArgument names the offending field: "model_name: is required: ...".
func invalidArgument(field, description string) *Rejection {
	st := status.New(codes.InvalidArgument, field+": "+description)
	if with, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: description}}}); err == nil {
		st = with
	}
	return &Rejection{st: st}
}

// overloaded carries a retry hint, in the message and as a RetryInfo detail.
func overloaded(message string, retryAfter time.Duration) *Rejection {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("%s; retry after %.2fs", message, retryAfter.Seconds()))
	delay := retryAfter.Truncate(time.Millisecond)
	if delay < time.Millisecond {
		delay = time.Millisecond
	}
	if with, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: ptypes.DurationProto(delay)}); err == nil {
		st = with
	}
	return &Rejection{st: st}
}
