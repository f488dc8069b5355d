// maas-gateway: one gRPC port in front of every service of the suite. It forwards calls without decoding them
// (the four RPC shapes), routes by service name (learnt from each upstream's server reflection) and KServe v2
// calls by model name, and serves health, reflection, API keys, TLS and Prometheus metrics. Settings come from
// GATEWAY_* environment variables (config.go); `python -m maas_gateway` runs this binary.
//
//	maas-gateway                 serve (settings from the environment)
//	maas-gateway healthcheck     exit 0 when a server reports SERVING (the container's health check)
package main

import (
	"fmt"
	"os"
	"runtime"

	"google.golang.org/grpc/grpclog"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:]))
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: maas-gateway (settings from GATEWAY_* variables) | maas-gateway healthcheck --help")
		os.Exit(2)
	}
	settings, err := LoadSettings(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "maas-gateway: invalid settings:")
		if list, ok := err.(ConfigError); ok {
			for _, line := range list {
				fmt.Fprintln(os.Stderr, "  "+line)
			}
		} else {
			fmt.Fprintln(os.Stderr, "  "+err.Error())
		}
		os.Exit(2)
	}
	// One scheduler thread unless GOMAXPROCS says otherwise. A proxy's work is handing bytes between sockets,
	// in bursts far shorter than a thread wake-up: with more threads, Go's scheduler spends more CPU waking and
	// parking them than the proxying takes (measured on the suite's two-core box, where the gateway shares the
	// cores with the services: 1.0 thread switch per forwarded call instead of 2.5-3, 130-145 µs of CPU instead
	// of 155-225). More throughput: replicas (the Kubernetes autoscaler adds them), or GOMAXPROCS=n.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	log := NewLogger(os.Stderr, settings.LogLevel, settings.LogFormat)
	grpclog.SetLoggerV2(grpcLogger{log})
	g, err := NewGateway(settings, log)
	if err != nil {
		log.Error("maas.server", "cannot start", "error", err)
		os.Exit(1)
	}
	os.Exit(g.Run())
}

// grpcLogger sends grpc-go's own messages to the gateway's log (one format on stderr): its errors as warnings
// (they are about connections it retries), the rest at DEBUG.
type grpcLogger struct{ log *Logger }

func (l grpcLogger) Info(args ...interface{})   { l.put(levelDebug, fmt.Sprint(args...)) }
func (l grpcLogger) Infoln(args ...interface{}) { l.put(levelDebug, fmt.Sprint(args...)) }
func (l grpcLogger) Infof(format string, args ...interface{}) {
	l.put(levelDebug, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Warning(args ...interface{})   { l.put(levelDebug, fmt.Sprint(args...)) }
func (l grpcLogger) Warningln(args ...interface{}) { l.put(levelDebug, fmt.Sprint(args...)) }
func (l grpcLogger) Warningf(format string, args ...interface{}) {
	l.put(levelDebug, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Error(args ...interface{})   { l.put(levelWarning, fmt.Sprint(args...)) }
func (l grpcLogger) Errorln(args ...interface{}) { l.put(levelWarning, fmt.Sprint(args...)) }
func (l grpcLogger) Errorf(format string, args ...interface{}) {
	l.put(levelWarning, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Fatal(args ...interface{}) { l.put(levelCritical, fmt.Sprint(args...)); os.Exit(1) }
func (l grpcLogger) Fatalln(args ...interface{}) {
	l.put(levelCritical, fmt.Sprint(args...))
	os.Exit(1)
}
func (l grpcLogger) Fatalf(format string, args ...interface{}) {
	l.put(levelCritical, fmt.Sprintf(format, args...))
	os.Exit(1)
}
func (l grpcLogger) V(level int) bool { return l.log.Enabled(levelDebug) }

func (l grpcLogger) put(level int, msg string) { l.log.Log(level, "grpc", "-", msg) }
