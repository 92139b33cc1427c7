// kubeapp is drainapp with a Kubernetes client: the bench's workload with the size of a real
// service on Kubernetes (some 650 packages, a 42 MB binary). Like drainapp it has a gRPC server
// (health, reflection, OpenTelemetry tracing), an HTTP server (Prometheus metrics, /healthz,
// /called) and the graceful shutdown many services have; like controllers and operators it
// links client-go, and watches ConfigMaps when asked to (kube.go). On
// SIGTERM it reports itself unready and keeps serving for DRAIN (default 3s) so that load
// balancers stop sending it requests, and only then closes its listeners. In a dev loop that
// wait buys nothing; the bench measures what it costs each strategy. `hotpod bench` rewrites the
// timestamp line before each build, so the program can say how long after the edit it came up.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// called is rewritten before each build: sed -re 's/time.Unix\(0, ([0-9]*)\)/time.Unix\(0, NOW\)/'
var called = time.Unix(0, 0)

func main() {
	port := env("PORT", "8080")
	drain, err := time.ParseDuration(env("DRAIN", "3s"))
	if err != nil {
		log.Fatalf("DRAIN: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeapp_requests_total", Help: "HTTP requests by path."}, []string{"path"})
	reg.MustRegister(requests)

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/called", func(w http.ResponseWriter, r *http.Request) {
		requests.WithLabelValues("/called").Inc()
		fmt.Fprintln(w, called.UnixNano())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	// Traces go to an OTLP collector when one is configured, as the OpenTelemetry SDK's
	// environment variables say.
	tp := sdktrace.NewTracerProvider()
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		exp, err := otlptracegrpc.New(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	}
	otel.SetTracerProvider(tp)
	gs := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	gln, err := net.Listen("tcp", ":"+env("GRPC_PORT", "0"))
	if err != nil {
		log.Fatal(err)
	}
	// Listening: the moment the new code can answer. Print how long after the edit that is.
	if called.UnixNano() > 0 {
		log.Printf("kubeapp listening on :%s (gRPC %s), %.1f ms after the edit", port, gln.Addr(), float64(time.Since(called).Microseconds())/1000)
	} else {
		log.Printf("kubeapp listening on :%s (gRPC %s)", port, gln.Addr())
	}
	go func() {
		if err := gs.Serve(gln); err != nil {
			log.Fatal(err)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go watchConfigMaps(ctx.Done())
	go func() {
		<-ctx.Done()
		// What many services do for their load balancers: unready at once, serve on while the
		// endpoints are updated, then stop.
		draining.Store(true)
		hs.Shutdown()
		log.Printf("draining for %s", drain)
		time.Sleep(drain)
		gs.GracefulStop()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		_ = tp.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
