package main

// maas-gateway healthcheck: exit 0 when a gRPC server reports SERVING on grpc.health.v1, 1 otherwise (the
// container's HEALTHCHECK: the gateway's image has no Python for maas_runtime.healthcheck, whose flags and output
// this mirrors).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func healthcheck(args []string) int {
	fs := flag.NewFlagSet("maas-gateway healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	address := fs.String("address", "127.0.0.1:50051", "host:port")
	service := fs.String("service", "", "gRPC service name; empty: the whole server")
	timeout := fs.Float64("timeout", 3, "seconds")
	caFile := fs.String("tls-ca-file", "", "PEM roots: ask over TLS (default: plaintext)")
	certFile := fs.String("tls-cert-file", "", "PEM client certificate, for a server that wants one")
	keyFile := fs.String("tls-key-file", "", "PEM key of the client certificate")
	serverName := fs.String("tls-server-name", "", "name to expect in the server's certificate")
	usage := func(msg string) int { // Docker reserves exit code 2: a usage error is "unhealthy" (1)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fmt.Fprintf(os.Stderr, "maas-gateway healthcheck: error: %s\n", msg)
		return 1
	}
	if err := fs.Parse(args); err != nil {
		return usage(err.Error())
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	if (*certFile != "" || *keyFile != "" || *serverName != "") && *caFile == "" {
		return usage("--tls-cert-file, --tls-key-file and --tls-server-name need --tls-ca-file")
	}
	opt := grpc.WithInsecure()
	if *caFile != "" {
		config := &tls.Config{ServerName: *serverName, RootCAs: x509.NewCertPool()}
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return usage(err.Error())
		}
		config.RootCAs.AppendCertsFromPEM(pem)
		if *certFile != "" || *keyFile != "" {
			pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				return usage(err.Error())
			}
			config.Certificates = []tls.Certificate{pair}
		}
		opt = grpc.WithTransportCredentials(credentials.NewTLS(config))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*timeout*float64(time.Second)))
	defer cancel()
	target := *address + " " + *service
	if *service == "" {
		target = *address + " (server)"
	}
	said, serving := "", false
	conn, err := grpc.DialContext(ctx, *address, opt, grpc.WithNoProxy())
	if err == nil {
		defer conn.Close()
		var reply *healthpb.HealthCheckResponse
		reply, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
		if err == nil {
			said, serving = reply.Status.String(), reply.Status == healthpb.HealthCheckResponse_SERVING
		}
	}
	if err != nil {
		st, _ := status.FromError(err)
		said = codeName(st.Code()) + ": " + st.Message()
		if st.Code() == codes.NotFound {
			said = "NOT_FOUND: no health status for service " + quote(*service)
		}
	}
	if serving {
		fmt.Printf("%s: %s\n", target, said)
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", target, said)
	return 1
}
