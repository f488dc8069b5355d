package main

// TCP connections whose reads and writes are raw system calls, made from the poller's callback.
//
// Why: Go marks a goroutine in an ordinary system call as such, and its monitor thread hands the goroutine's P (the
// right to run Go code; the gateway has one, see main.go) to another thread when the call outlasts its 20 µs tick.
// On the suite's busy two-core box most socket writes do (a loopback write runs the receiver's TCP stack too), so
// each call through the gateway cost three thread switches instead of one, and ~30 % more CPU (measured: voluntary
// context switches 3.2 -> 1.0 per forwarded call, 200 -> 140 µs of CPU).
// Safe: the sockets are non-blocking, so a read or write returns at once (EAGAIN when it would block: then the
// poller waits for the socket, as Go's own net.Conn does); deadlines and closing work as for any net.Conn.

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

type rawConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// withRawIO wraps a TCP connection (anything else is returned as it is).
func withRawIO(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{TCPConn: tc, rc: rc}
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("read", errno)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])),
				uintptr(len(p)-written))
			switch e {
			case 0:
				written += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return written, err
	}
	if errno != 0 {
		return written, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("write", errno)}
	}
	return written, nil
}

// rawListener accepts connections with raw reads and writes (the gateway's port).
type rawListener struct{ net.Listener }

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return withRawIO(c), nil
}

// dialRaw dials an upstream replica (host:port) for grpc-go.
func dialRaw(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	return withRawIO(c), nil
}
