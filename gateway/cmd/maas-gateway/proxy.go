package main

// Forwarding of messages the gateway never decodes, in every RPC shape, through one loop: each call is a
// bidirectional stream to the upstream (which carries the four shapes alike), the caller's messages copied up by
// one goroutine, the upstream's copied back by the handler's.
//
// What travels with a call:
//   - to the upstream: the caller's metadata (authorization, x-request-id, anything custom; not the transport's
//     own headers), the request id settled on for the call, and the caller's deadline (what is left of it);
//   - back to the caller: the upstream's initial metadata, its messages as they come, its status code, message,
//     details (google.rpc.Status) and trailing metadata, unchanged;
//   - a cancelled caller cancels the upstream call.
//
// An upstream that cannot be reached (no replica connected: a status the upstream never sent, so with no trailing
// metadata) is answered UNAVAILABLE naming the upstream, without its internal address; the details are logged.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const requestIDKey = "x-request-id"

// streamDescs by shape (index: client streams + 2 * server streams). A method's own shape lets grpc-go end a
// unary request with the message (END_STREAM on its DATA frame) and take a unary answer with its status; the
// shape of a method not described (no reflection) is taken as bidirectional, which carries every shape.
var streamDescs = [4]*grpc.StreamDesc{{}, {ClientStreams: true}, {ServerStreams: true},
	{ClientStreams: true, ServerStreams: true}}

var bidi = Shape{ClientStreams: true, ServerStreams: true}

func descOf(s Shape) *grpc.StreamDesc {
	i := 0
	if s.ClientStreams {
		i++
	}
	if s.ServerStreams {
		i += 2
	}
	return streamDescs[i]
}

// hopByHop: headers of the transport, not of the caller (grpc sets its own on the upstream call), and the suite's
// own token between hops (the gateway adds the real one; a caller's is never passed on).
var hopByHop = map[string]bool{"user-agent": true, "te": true, "content-type": true, "host": true,
	"connection": true, internalTokenKey: true}

func outgoingMetadata(in metadata.MD, requestID string) metadata.MD {
	out := make(metadata.MD, len(in)+1)
	for k, v := range in {
		if k == requestIDKey || hopByHop[k] || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, ":") {
			continue
		}
		out[k] = v
	}
	out[requestIDKey] = []string{requestID}
	return out
}

// forward relays the call c on ss to up, for a method of the given shape; first, when given, is the caller's first
// message, already read. The caller's messages go up from another goroutine (from this one when there is only one),
// the upstream's come back from this one.
func forward(c *call, up *Upstream, ss grpc.ServerStream, shape Shape, first *frame) error {
	if !shape.ClientStreams && first == nil {
		first = &frame{}
		if err := ss.RecvMsg(first); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ss.Context(), outgoingMetadata(c.incoming, c.requestID)))
	defer cancel()
	up.awaitReady(ctx, c.g.settings.UpstreamWait)
	cs, err := up.conn.NewStream(ctx, descOf(shape), c.method, up.raw...)
	if err != nil {
		return relayError(c, up, err, nil)
	}
	callerErr := make(chan error, 1)
	if shape.ClientStreams {
		go copyUp(ss, cs, first, callerErr, cancel)
	} else {
		cs.SendMsg(first) //nolint:errcheck // an error here shows in RecvMsg
	}

	if header, err := cs.Header(); err == nil && len(header) > 0 {
		if err := ss.SendHeader(header); err != nil {
			return err
		}
	}
	f := &frame{}
	for {
		err := cs.RecvMsg(f)
		if err == io.EOF {
			c.setTrailer(cs.Trailer())
			return nil
		}
		if err != nil {
			select {
			case cerr := <-callerErr: // the caller's side failed first (a message too large, a cancel)
				if cerr != nil {
					return cerr
				}
			default:
			}
			return relayError(c, up, err, cs.Trailer())
		}
		if err := ss.SendMsg(f); err != nil {
			return err
		}
		if !shape.ServerStreams { // one answer: grpc-go has read the status with it
			c.setTrailer(cs.Trailer())
			return nil
		}
	}
}

// copyUp sends the caller's messages upstream until the caller half-closes. A failure on the caller's side is
// reported on errc and ends the upstream call; one on the upstream's side just stops (RecvMsg tells the status).
func copyUp(ss grpc.ServerStream, cs grpc.ClientStream, first *frame, errc chan<- error, cancel context.CancelFunc) {
	if first != nil {
		if cs.SendMsg(first) != nil {
			return
		}
	}
	for {
		f := &frame{}
		if err := ss.RecvMsg(f); err != nil {
			if err == io.EOF {
				cs.CloseSend() //nolint:errcheck // an error here shows in RecvMsg
				return
			}
			errc <- err
			cancel()
			return
		}
		if cs.SendMsg(f) != nil {
			return
		}
	}
}

// relayError answers the caller with the upstream's status, or UNAVAILABLE naming the upstream when the status is
// the channel's own: no replica connected, or an answer the gateway could not read (a stream reset, headers over
// the limit; grpc-go reports those as INTERNAL with no trailer from the upstream).
func relayError(c *call, up *Upstream, err error, trailer metadata.MD) error {
	st, _ := status.FromError(err)
	c.setTrailer(trailer)
	if len(trailer) == 0 {
		switch st.Code() {
		case codes.Unavailable:
			up.WarnUnreachable(st.Message())
			return status.Error(codes.Unavailable, up.Name+" is unreachable; retry later")
		case codes.Internal:
			up.WarnUnreachable(st.Message())
			return status.Error(codes.Unavailable, "the answer of "+up.Name+" could not be read ("+
				shortened(st.Message(), 120)+")")
		}
	}
	return st.Err()
}

// shortened is s cut to at most n bytes (on a rune boundary), with "..." when cut.
func shortened(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// serve answers a call the router resolved (the unknown-service handler: every method that is not the gateway's
// own health or reflection).
func (g *Gateway) serve(c *call, r route, ss grpc.ServerStream) error {
	switch r.kind {
	case routeForward:
		return forward(c, r.upstream, ss, r.shape, nil)
	case routeByModel:
		return g.forwardByModel(c, r, ss)
	case routeUnavailable:
		return c.reject(reject(codes.Unavailable, "this service is not known yet: an upstream has not been "+
			"reachable to say what it serves; retry later"))
	case routeServerLive:
		return answer(ss, boolMessage(true))
	case routeServerReady:
		return answer(ss, boolMessage(g.kserveReady()))
	case routeServerMetadata:
		return answer(ss, serverMetadataResponse("maas-gateway", version))
	}
	return unimplemented(c.method)
}

// forwardByModel: a KServe call, to the upstream that serves the model its request names.
func (g *Gateway) forwardByModel(c *call, r route, ss grpc.ServerStream) error {
	request := &frame{}
	if err := ss.RecvMsg(request); err != nil {
		return err
	}
	model, _, err := stringField(request.payload, 1)
	if err != nil {
		_, name, _ := strings.Cut(strings.TrimPrefix(c.method, "/"), "/")
		return c.reject(invalidArgument("request", "could not be parsed as "+name+"Request"))
	}
	if model == "" {
		return c.reject(invalidArgument(r.field, "is required: the gateway routes by model name"))
	}
	up, rej := g.models.Owner(ss.Context(), model)
	if rej != nil {
		return c.reject(rej)
	}
	err = forward(c, up, ss, Shape{}, request)
	if status.Code(err) == codes.NotFound {
		g.models.Forget(model) // moved or removed: asked again next time
	}
	return err
}

// answer a unary call the gateway serves itself with a serialized message.
func answer(ss grpc.ServerStream, reply []byte) error {
	if err := ss.RecvMsg(&frame{}); err != nil {
		return err
	}
	return ss.SendMsg(&frame{payload: reply})
}

func unimplemented(method string) error {
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	return status.Error(codes.Unimplemented, shortened(fmt.Sprintf("unknown method %s for service %s", name, service), 1000))
}
